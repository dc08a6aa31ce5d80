"""The hot path's MQTT side: paho-mqtt on its own network thread, manual acknowledgement.

Messages are acknowledged only after the batch holding them is committed. The session is
persistent (MQTT v5, ``clean_start=False``), so what arrives while the worker is away waits
in the broker, and whatever was delivered but not acknowledged is delivered again. The v5
``Receive Maximum`` bounds how many unacknowledged messages the broker sends us: when the
database is slow, acknowledgements stop and so does the flow (backpressure without loss).
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.client import PUBACK
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.decode import RawMessage

log = logging.getLogger(__name__)

CHANNELS = ("telemetry", "event", "status")
_PUBACK = struct.Struct("!BBH")  # fixed header, remaining length 2, packet id (v5: success)


@dataclass(frozen=True, slots=True)
class SourceConfig:
    host: str
    port: int
    username: str
    password: str
    client_id: str
    topic_root: str = "eldercare/v1"
    share_group: str | None = "ingest"
    session_expiry_s: int = 7 * 24 * 3600
    receive_maximum: int = 5000
    keepalive_s: int = 30
    queue_max: int = 20000  # bounded hand-over between the MQTT thread and the writer

    def filters(self) -> list[str]:
        plain = [f"{self.topic_root}/+/+/{c}" for c in CHANNELS]
        if not self.share_group:
            return plain
        return [f"$share/{self.share_group}/{f}" for f in plain]


class MqttSource:
    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self._queue: queue.Queue[RawMessage] = queue.Queue(maxsize=cfg.queue_max)
        self._generation = 0
        self._lock = threading.Lock()
        self.connected = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.username_pw_set(cfg.username, cfg.password)
        client.reconnect_delay_set(min_delay=1, max_delay=15)
        client.max_inflight_messages_set(100)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client

    # paho callbacks (network thread) ----------------------------------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        with self._lock:
            self._generation += 1
        client.subscribe([(f, 1) for f in self.cfg.filters()])
        log.info("connected to broker (session present: %s)", flags.session_present)
        self.connected.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: object,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self.connected.clear()
        log.warning("disconnected from broker: %s", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        # Blocking here only when far past Receive Maximum: then TCP backpressure holds the
        # broker, which keeps the messages.
        self._queue.put(
            RawMessage(
                msg.topic, bytes(msg.payload), time.time(), msg.mid, msg.qos, self._generation
            )
        )

    # used by the worker ------------------------------------------------------------------
    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        props.ReceiveMaximum = self.cfg.receive_maximum
        self._client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def take_batch(self, max_n: int, wait_s: float, idle_timeout_s: float) -> list[RawMessage]:
        """Block up to ``idle_timeout_s`` for a first message, then gather more for ``wait_s``."""
        try:
            first = self._queue.get(timeout=idle_timeout_s)
        except queue.Empty:
            return []
        out = [first]
        deadline = time.monotonic() + wait_s
        while len(out) < max_n:
            remaining = deadline - time.monotonic()
            try:
                out.append(
                    self._queue.get_nowait()
                    if remaining <= 0
                    else self._queue.get(timeout=remaining)
                )
            except queue.Empty:
                break
        return out

    def ack(self, messages: Sequence[RawMessage]) -> int:
        """Acknowledge committed messages, in arrival order; messages delivered on an earlier
        connection are skipped (the broker redelivers them, and the database drops the copy).

        The PUBACKs of a batch leave as one write: paho's ``ack()`` queues each one separately
        and wakes its network thread per message, a large share of the hot path's cost."""
        gen = self._generation
        mids = [m.mid for m in messages if m.qos == 1 and m.generation == gen]
        if not mids:
            return 0
        data = b"".join(_PUBACK.pack(0x40, 2, mid) for mid in mids)
        self._client._packet_queue(PUBACK, data, 0, 0)  # one packet stream of N PUBACKs
        return len(mids)

    def backlog(self) -> int:
        return self._queue.qsize()
