"""The ingest's MQTT source against the real broker: it stops reading when its queue is full
(so TCP backpressure reaches the broker) and resumes, losing nothing, once drained."""

from __future__ import annotations

import asyncio
import uuid

from devices import mqtt_codec as mc
from ingest.mqtt_source import MqttSource, SourceConfig
from tests.services import LOAD_USER, Services

MESSAGES = 20_000
QUEUE_MAX = 200


async def _publish_qos0(port: int, topic: str, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        mc.connect(
            client_id=f"bp-{uuid.uuid4().hex[:6]}",
            username=LOAD_USER[0],
            password=LOAD_USER[1],
            keepalive_s=60,
            clean_start=True,
            session_expiry_s=0,
            receive_maximum=100,
        )
    )
    assert mc.Parser().feed(await reader.read(64))[0] == mc.ConnAck(False, 0)
    body = b'[{"n":"hr","v":70}]' + b" " * 200
    packet = mc.publish(topic.encode(), 0, body, qos=0)
    for i in range(count):
        writer.write(packet)
        if i % 500 == 0:
            await writer.drain()
    writer.write(mc.DISCONNECT_BYTES)
    await writer.drain()
    writer.close()


def test_a_full_queue_stops_reading_and_draining_resumes(services: Services) -> None:
    site = f"bp{uuid.uuid4().hex[:6]}"
    cfg = SourceConfig(
        host="127.0.0.1",
        port=services.broker.port,
        username="ingest",
        password=services.ingest_password,
        client_id=f"bp-src-{uuid.uuid4().hex[:6]}",
        share_group=None,
        session_expiry_s=0,
        queue_max=QUEUE_MAX,
    )

    async def go() -> tuple[int, int]:
        source = MqttSource(cfg)
        stop = asyncio.Event()
        runner = asyncio.create_task(source.run(stop))
        await asyncio.wait_for(source.connected.wait(), 10)
        await asyncio.sleep(0.5)  # subscribed
        await _publish_qos0(services.broker.port, f"eldercare/v1/{site}/dev-1/telemetry", MESSAGES)
        await asyncio.sleep(1.0)
        held = source.backlog()  # nothing taken yet: reading stopped near QUEUE_MAX
        taken = 0
        while taken < MESSAGES:
            batch = await source.take_batch(1000, 0.0, 10.0)
            assert batch, f"stalled after {taken} messages"
            taken += sum(1 for m in batch if f"/{site}/" in m.topic)
        stop.set()
        await runner
        return held, taken

    held, taken = asyncio.run(go())
    assert QUEUE_MAX <= held < MESSAGES // 2, held
    assert taken == MESSAGES
