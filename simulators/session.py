"""One simulated device: its own MQTT connection, periodic telemetry, events and incidents."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

import aiomqtt
import msgspec

from devices.backoff import Backoff
from devices.domain import DeviceKind
from devices.wire import Channel
from simulators import devices as packs
from simulators.fleet import DeviceCreds, Incident, IncidentKind

log = logging.getLogger("simulators.device")

# Devices with a button a resident presses to answer "press if you are fine".
CHECK_IN_KINDS = (DeviceKind.WRISTBAND, DeviceKind.SOS_BUTTON)

BACKOFF_INITIAL_S: Final = 1.0
BACKOFF_MAX_S: Final = 30.0
ACC_WINDOW_SAMPLES: Final = 50  # 1 s at 50 Hz
FALLEN_FOR_S: Final = 120.0  # after an injected fall the wearer cannot answer for this long


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    tls_ca: str | None = None  # TLS, verifying the broker against this CA (the 8883 listener)


@dataclass(slots=True)
class Stats:
    """Counters shared by every device of one demo run (one event loop, no locking)."""

    sent: int = 0
    incidents: int = 0
    commands: int = 0
    connected: int = 0
    reconnects: int = 0


class SimDevice:
    """A device's state and connection loop; ``inbox`` takes incidents, ``None`` means stop."""

    def __init__(
        self,
        creds: DeviceCreds,
        *,
        rng: random.Random,
        interval: float,
        stats: Stats,
        answers_checks: bool = True,
    ) -> None:
        self.creds = creds
        self.answers_checks = answers_checks  # the wearer presses "I'm OK" when asked
        self.fell_at = 0.0  # when this wearable last injected a fall (its wearer is down)
        self.rng = rng
        self.interval = interval
        self.stats = stats
        self.inbox: asyncio.Queue[Incident | None] = asyncio.Queue()
        self.pending: deque[Incident] = deque()
        self.seq = 0
        self.battery = rng.uniform(60.0, 100.0)
        self.present = rng.random() < 0.7  # in bed (bed mat), someone in the room (radar)
        self.door_open = False
        self._attempt = 0
        self._answers: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"{self.creds.site_id}/{self.creds.device_id}"

    async def run(self, broker: Broker) -> None:
        """Stay connected, reconnecting with jittered backoff, until told to stop."""
        while True:
            try:
                await self._connect_and_run(broker)
                return
            except* aiomqtt.MqttError as group:
                # Warn once per outage; the retries are only worth a debug line.
                level = logging.WARNING if self._attempt == 0 else logging.DEBUG
                log.log(level, "%s: MQTT connection failed: %s", self.name, group.exceptions[0])
            # the backend's own full-jitter backoff, from this device's seeded generator
            delay = Backoff(BACKOFF_INITIAL_S, BACKOFF_MAX_S, self._attempt).next_delay(self.rng)
            self._attempt += 1
            if not await self._pause(delay):
                return

    def _client(self, broker: Broker) -> aiomqtt.Client:
        return aiomqtt.Client(
            broker.host,
            broker.port,
            username=self.creds.device_id,
            password=self.creds.password,
            identifier=self.creds.device_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=aiomqtt.Will(
                self.creds.topic(Channel.STATUS), packs.LAST_WILL, qos=1, retain=True
            ),
            keepalive=30,
            timeout=10.0,
            tls_params=aiomqtt.TLSParameters(ca_certs=broker.tls_ca) if broker.tls_ca else None,
        )

    async def _connect_and_run(self, broker: Broker) -> None:
        async with self._client(broker) as client:
            if self._attempt:
                self.stats.reconnects += 1
                log.info("%s: reconnected after %d attempts", self.name, self._attempt)
            self._attempt = 0
            self.stats.connected += 1
            try:
                await client.subscribe(self.creds.topic(Channel.CMD), qos=1)
                status = packs.status_payload(now=time.time(), battery=self._battery())
                await self._publish(client, Channel.STATUS, status, retain=True)
                await self._announce_state(client)
                async with asyncio.TaskGroup() as tg:
                    listener = tg.create_task(self._log_commands(client), name=f"cmd:{self.name}")
                    await self._publish_loop(client)
                    listener.cancel()
            finally:
                self.stats.connected -= 1

    async def _pause(self, seconds: float) -> bool:
        """Sleep, keeping incidents that arrive for later; False when told to stop."""
        try:
            async with asyncio.timeout(seconds):
                while (item := await self.inbox.get()) is not None:
                    self.pending.append(item)
        except TimeoutError:
            return True
        return False

    async def _publish_loop(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self.rng.uniform(0.0, self.interval)  # spread the fleet out
        while True:
            while self.pending:
                await self._inject(client, self.pending[0])
                self.pending.popleft()
            try:
                async with asyncio.timeout_at(next_tick):
                    item = await self.inbox.get()
            except TimeoutError:
                await self._tick(client, now=time.time())
                next_tick = loop.time() + self.interval * self.rng.uniform(0.8, 1.2)
                continue
            if item is None:  # stopping: say goodbye the way the Last Will would
                await self._publish(client, Channel.STATUS, packs.LAST_WILL, retain=True)
                return
            self.pending.append(item)

    async def _log_commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.stats.commands += 1
            payload = message.payload
            if not isinstance(payload, bytes | str):
                log.warning("%s: command with a %s payload", self.name, type(payload).__name__)
                continue
            try:
                command = msgspec.json.decode(payload, type=dict[str, object])
            except msgspec.DecodeError:
                log.warning("%s: unreadable command %r", self.name, payload[:200])
                continue
            who = f" ({self.creds.resident})" if self.creds.resident else ""
            log.info("%s%s: command %s %s", self.name, who, command.get("type"), command)
            kind = command.get("type")
            if (kind == "fall_check" and self.creds.kind is DeviceKind.WRISTBAND) or (
                kind == "check_in" and self.creds.kind in CHECK_IN_KINDS
            ):
                self._answer_later(client, command)

    def _answer_later(self, client: aiomqtt.Client, command: dict[str, object]) -> None:
        """The wearer reads "did you fall?" (or "press if you are fine") and, if able and not
        on the floor, presses the button a few seconds later (an event over the wire
        protocol)."""
        down = time.time() - self.fell_at < FALLEN_FOR_S

        async def answer() -> None:
            await asyncio.sleep(self.rng.uniform(3.0, 12.0))
            pack = packs.check_answer(
                command,
                device_id=self.creds.device_id,
                now=time.time(),
                can_answer=self.answers_checks and not down,
            )
            if pack is not None:
                await self._send(client, Channel.EVENT, pack)
                log.info(
                    "%s: answered %s %s", self.name, command.get("type"), command.get("check_id")
                )

        task = asyncio.get_running_loop().create_task(answer(), name=f"answer:{self.name}")
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def _announce_state(self, client: aiomqtt.Client) -> None:
        if self.creds.kind in (DeviceKind.BED_MAT, DeviceKind.RADAR):
            await self._presence(client, now=time.time())
        elif self.creds.kind is DeviceKind.DOOR:
            pack = packs.door_pack(
                device_id=self.creds.device_id,
                now=time.time(),
                is_open=self.door_open,
                seq=self._next_seq(),
            )
            await self._send(client, Channel.EVENT, pack)
        elif self.creds.kind is DeviceKind.SMOKE:
            # a smoke detector tests itself at power-on and monthly, and says how it went
            pack = packs.selftest_pack(
                device_id=self.creds.device_id, now=time.time(), passed=True, seq=self._next_seq()
            )
            await self._send(client, Channel.EVENT, pack)

    async def _tick(self, client: aiomqtt.Client, *, now: float) -> None:
        """Plausible events now and then, then the periodic telemetry."""
        device_id, kind, roll = self.creds.device_id, self.creds.kind, self.rng.random()
        if kind is DeviceKind.PIR and roll < 0.3:
            pack = packs.motion_pack(device_id=device_id, now=now, seq=self._next_seq())
            await self._send(client, Channel.EVENT, pack)
        elif kind is DeviceKind.DOOR and roll < (0.5 if self.door_open else 0.05):
            self.door_open = not self.door_open
            pack = packs.door_pack(
                device_id=device_id, now=now, is_open=self.door_open, seq=self._next_seq()
            )
            await self._send(client, Channel.EVENT, pack)
        elif kind in (DeviceKind.BED_MAT, DeviceKind.RADAR) and roll < 0.02:
            self.present = not self.present
            await self._presence(client, now=now)
        self.battery = max(5.0, self.battery - self.rng.uniform(0.0, 0.01))
        telemetry = packs.telemetry_pack(
            kind,
            device_id=device_id,
            now=now,
            rng=self.rng,
            battery=self.battery,
            present=self.present,
            seq=self.seq + 1,
        )
        if telemetry is not None:
            self.seq += 1
            await self._send(client, Channel.TELEMETRY, telemetry)

    async def _presence(self, client: aiomqtt.Client, *, now: float) -> None:
        pack = packs.presence_pack(
            device_id=self.creds.device_id, now=now, present=self.present, seq=self._next_seq()
        )
        await self._send(client, Channel.EVENT, pack)

    async def _inject(self, client: aiomqtt.Client, incident: Incident) -> None:
        now, device_id = time.time(), self.creds.device_id
        if incident.kind is IncidentKind.SOS:
            pack = packs.sos_pack(device_id=device_id, now=now, seq=self._next_seq())
        else:
            if self.creds.kind is DeviceKind.WRISTBAND:  # the raw impact, then the verdict
                self.fell_at = now
                samples = packs.fall_samples(self.rng, ACC_WINDOW_SAMPLES)
                window = packs.acc_window_pack(
                    device_id=device_id, now=now, samples=samples, seq=self._next_seq()
                )
                await self._send(client, Channel.TELEMETRY, window)
            pack = packs.fall_pack(
                device_id=device_id, now=now, confidence=incident.confidence, seq=self._next_seq()
            )
        await self._send(client, Channel.EVENT, pack)
        self.stats.incidents += 1
        who = f" ({self.creds.resident})" if self.creds.resident else ""
        log.info("%s%s: injected %s", self.name, who, incident.kind)

    def _battery(self) -> float | None:
        return self.battery if self.creds.kind in packs.BATTERY_KINDS else None

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def _send(self, client: aiomqtt.Client, channel: Channel, pack: packs.Pack) -> None:
        await self._publish(client, channel, packs.encode(pack))

    async def _publish(
        self, client: aiomqtt.Client, channel: Channel, payload: bytes, *, retain: bool = False
    ) -> None:
        await client.publish(self.creds.topic(channel), payload, qos=1, retain=retain)
        self.stats.sent += 1
