"""Play a timeline over the real broker: one MQTT connection per device, messages sent at the
wall time their simulated time maps to, backlogs sent in a burst on reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from devices.domain import DeviceKind, SimClock
from devices.wire import Channel
from simulators import devices as packs
from simulators.clock import now as sim_now
from simulators.clock import sleep_until
from simulators.fleet import DeviceCreds
from simulators.session import Broker
from simulators.timeline import Msg, Op, Truth

log = logging.getLogger("simulators.player")
CONNECT_TIMEOUT_S = 20.0
FALLEN_FOR_S = 120.0  # after a real fall the wearer cannot answer "did you fall?" for this long
FALLS = frozenset({"fall", "fall_accel"})
# Devices a resident can see or hear listen to their own cmd topic (help_coming, fall_check).
LISTENING = frozenset({DeviceKind.WRISTBAND, DeviceKind.SOS_BUTTON})


@dataclass(slots=True)
class PlayStats:
    sent: int = 0
    buffered: int = 0
    dropped: int = 0
    reconnects: int = 0
    late_s: float = 0.0  # worst lag behind the schedule
    commands: int = 0  # commands the devices received


@dataclass(slots=True)
class Link:
    creds: DeviceCreds
    client: mqtt.Client | None = None
    backlog: list[Msg] = field(default_factory=list)
    online: bool = False


class Player:
    def __init__(
        self,
        creds: Mapping[str, DeviceCreds],
        *,
        broker: Broker,
        on_truth: Callable[[Truth], None],
        answers: Mapping[str, bool] | None = None,
    ) -> None:
        self.links = {k: Link(v) for k, v in creds.items()}
        self.broker = broker
        self.on_truth = on_truth
        self.stats = PlayStats()
        # wristband -> its wearer presses "I'm OK" when asked (population.answers_fall_check)
        self.answers = dict(answers or {})
        self.fell: dict[str, float] = {}  # wristband -> simulated time of its last real fall
        self.clock: SimClock | None = None

    def _client(self, link: Link) -> mqtt.Client:
        c = link.creds
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=c.device_id, protocol=mqtt.MQTTv5
        )
        client.username_pw_set(c.device_id, c.password)
        client.will_set(c.topic(Channel.STATUS), packs.LAST_WILL, qos=1, retain=True)
        if self.broker.tls_ca:  # the devices' TLS listener, verified against this CA
            client.tls_set(ca_certs=self.broker.tls_ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        return client

    def _connect_blocking(self, link: Link, sim_now: float) -> None:
        client = self._client(link)
        client.connect(self.broker.host, self.broker.port, keepalive=30)
        client.loop_start()
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not client.is_connected():
            if time.monotonic() > deadline:
                client.loop_stop()
                raise TimeoutError(f"{link.creds.device_id}: no CONNACK from the broker")
            time.sleep(0.01)
        status = packs.status_payload(now=sim_now, battery=None)
        client.publish(link.creds.topic(Channel.STATUS), status, qos=1, retain=True)
        if link.creds.kind in LISTENING:  # a wristband also answers "did you fall?"
            client.on_message = partial(self._on_command, link)
            client.subscribe(link.creds.topic(Channel.CMD), qos=1)
        link.client, link.online = client, True

    def _on_command(self, link: Link, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        """A command, logged; to a ``fall_check`` the wearer answers "I'm OK" unless they
        cannot (population parameter) or really fell a moment ago. Runs on the client's
        network thread. A ``check_in`` ("press if you are fine") is never answered here: in a
        conformance run the quiet resident is the scenario's collapse (the demo devices,
        simulators/session.py, answer it)."""
        try:
            command = msgspec.json.decode(msg.payload, type=dict[str, object])
        except msgspec.DecodeError:
            log.warning("%s: unreadable command %r", link.creds.device_id, msg.payload[:200])
            return
        self.stats.commands += 1
        device_id = link.creds.device_id
        who = f" ({link.creds.resident})" if link.creds.resident else ""
        log.info("%s%s: command %s %s", device_id, who, command.get("type"), command)
        if command.get("type") != "fall_check" or link.creds.kind is not DeviceKind.WRISTBAND:
            return
        now = sim_now(self.clock) if self.clock else time.time()
        down = now - self.fell.get(device_id, float("-inf")) < FALLEN_FOR_S
        pack = packs.fall_check_answer(
            command,
            device_id=device_id,
            now=now,
            can_answer=self.answers.get(device_id, False) and not down,
        )
        if pack is not None and link.client is not None:
            link.client.publish(link.creds.topic(Channel.EVENT), packs.encode(pack), qos=1)
            log.info("%s: answered fall check %s: I'm OK", device_id, command.get("check_id"))

    async def connect(self, device_ids: Iterable[str], clock: SimClock | None) -> None:
        """Connect devices concurrently, then send each one's backlog in a burst."""
        links = [self.links[d] for d in device_ids]
        now = sim_now(clock) if clock else time.time()
        await asyncio.gather(*(asyncio.to_thread(self._connect_blocking, lk, now) for lk in links))
        for lk in links:
            backlog, lk.backlog = lk.backlog, []
            for m in backlog:
                self._publish(lk, m)

    def drop(self, device_id: str) -> None:
        """Disconnect with reason 0x04, so the broker publishes the Last Will."""
        link = self.links[device_id]
        if link.client is None:
            return
        with_will = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
        link.client.disconnect(reasoncode=with_will)
        link.client.loop_stop()
        link.client, link.online = None, False
        self.stats.dropped += 1

    def _publish(self, link: Link, m: Msg) -> None:
        assert link.client is not None
        target = self.links[m.topic_device].creds if m.topic_device in self.links else link.creds
        payload = m.raw if m.raw is not None else packs.encode(m.pack or [])
        topic = target.topic(m.channel) if m.topic_device else link.creds.topic(m.channel)
        link.client.publish(topic, payload, qos=1, retain=m.retain)
        self.stats.sent += 1

    async def play(self, msgs: list[Msg], clock: SimClock) -> PlayStats:
        msgs = sorted(msgs, key=lambda m: m.at)
        self.clock = clock
        reconnects: list[asyncio.Task[None]] = []
        for m in msgs:
            await sleep_until(clock, m.at)
            self.stats.late_s = max(self.stats.late_s, time.time() - clock.wall_of(m.at))
            link = self.links[m.device_id]
            match m.op:
                case Op.TRUTH:
                    assert m.truth is not None
                    m.truth.wall_at = time.time()
                    if m.truth.what in FALLS:
                        self.fell[m.truth.device_id] = m.truth.sim_at
                    self.on_truth(m.truth)
                case Op.DROP:
                    self.drop(m.device_id)
                case Op.CONNECT:
                    self.stats.reconnects += 1
                    reconnects.append(asyncio.create_task(self.connect([m.device_id], clock)))
                case Op.SEND if link.online:
                    self._publish(link, m)
                case Op.SEND:
                    link.backlog.append(m)
                    self.stats.buffered += 1
        await asyncio.gather(*reconnects)
        return self.stats

    def close(self) -> None:
        """Say goodbye cleanly (status offline, as the Last Will would), then disconnect."""
        for link in self.links.values():
            if link.client is None:
                continue
            info = link.client.publish(
                link.creds.topic(Channel.STATUS), packs.LAST_WILL, qos=1, retain=True
            )
            with contextlib.suppress(RuntimeError, ValueError):  # the broker is gone
                info.wait_for_publish(timeout=5)
            link.client.disconnect()
            link.client.loop_stop()
            link.client = None
