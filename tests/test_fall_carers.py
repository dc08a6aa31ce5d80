"""Learning from carers over the real database (issue 13 item 5): a real SisFall fall cut,
stored as a device's 1-s acc packs and judged by the worker's own path (``acc_verdicts`` with
the shipped models, ``persist``), opens an order; resolved as a false alarm it keeps the
device's window as a labelled example naming the model that judged it, which retention does
not drop and the retraining command exports."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row

from alerts.detection.acc_stream import acc_verdicts
from alerts.detection.detectors.base import StreamEvent, Verdict
from alerts.detection.fall import live
from alerts.detection.fall import model as M
from alerts.detection.fall.detector import AccFallDetector
from alerts.detection.persist import persist
from alerts.dispatch.examples import AFTER_S, BEFORE_S
from alerts.dispatch.orders import Actor, accept_order, resolve_order
from alerts.dispatch.policy import policy_from_settings
from alerts.evaluate.training import carers
from alerts.evaluate.training.sisfall import COUNT_TO_MS2
from devices.domain import Colour, Outcome
from devices.settings import Settings
from tests.services import Services, query, seed

FIXTURE = Path(__file__).parent / "fixtures" / "sisfall_F01_SA01_R01_cut.txt"
SQL_DEVICE = (
    "SELECT d.device_key, d.device_id, d.kind, d.site_id, a.resident_id FROM devices d"
    " JOIN device_assignments a ON a.device_key = d.device_key AND upper_inf(a.during)"
    " WHERE d.device_id = %s"
)


def fall_packs(start: datetime) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """A SisFall fall (waist, 200 Hz, impact about 4 s in) with 12 s at rest before it, as
    1-s packs: 16 s before the impact, more than an example keeps."""
    x = np.loadtxt(FIXTURE, delimiter=",", comments="#") * COUNT_TO_MS2
    t, x = live.with_lead_in(np.arange(len(x)) / 200.0, x, 12.0)
    return live.packs(t, x, start=start), t, x


async def store_packs(conn: Any, device_key: int, packs: list[dict[str, Any]]) -> None:
    for p in packs:
        await conn.execute(
            "INSERT INTO acc_windows (time, device_key, t_offset, acc_x, acc_y, acc_z)"
            " VALUES (to_timestamp(%s), %s, %s, %s, %s, %s)",
            (p["t0"], device_key, p["t_offset"], p["acc_x"], p["acc_y"], p["acc_z"]),
        )


async def judge(
    conn: Any, dev: dict[str, Any], packs: list[dict[str, Any]], now: datetime
) -> list[Verdict]:
    """Every pack as the worker claims it: its window loaded from acc_windows and judged."""
    models = M.load_all()
    detector = AccFallDetector(models["waist"], models)
    events = [
        StreamEvent(
            kind="acc",
            name="acc",
            time=datetime.fromtimestamp(float(p["t0"]), UTC),
            device_key=dev["device_key"],
            device_id=dev["device_id"],
            device_kind=dev["kind"],
            site_id=dev["site_id"],
            resident_id=dev["resident_id"],
            placement="waist",
        )
        for p in packs
    ]
    return await acc_verdicts(conn, events, [detector], now)


def test_a_fall_order_resolved_as_false_alarm_keeps_its_window_with_the_model_that_judged(
    services: Services, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(services, database_url)
    staff = query(database_url, "SELECT user_id FROM users WHERE username = 'staff-homes'")[0]
    waist = M.load(M.MODEL_ROOT / "waist")
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=30)
    packs, t, _x = fall_packs(start)
    policy = policy_from_settings(Settings())

    async def go() -> tuple[list[Verdict], int]:
        async with await psycopg.AsyncConnection.connect(
            database_url, row_factory=dict_row
        ) as conn:
            for device_id in ("wb-0042", "wb-0043"):
                await conn.execute(
                    "UPDATE devices SET placement = 'waist' WHERE device_id = %s", (device_id,)
                )
            cur = await conn.execute(SQL_DEVICE, ("wb-0042",))
            dev = await cur.fetchone()
            assert dev is not None
            await store_packs(conn, dev["device_key"], packs)
            verdicts = await judge(conn, dev, packs, now - timedelta(minutes=29))
            for v in verdicts:
                await persist(conn, v, now=now - timedelta(minutes=29), policy=policy)
            # the same trace on another device: a real fall, handled (no example)
            cur = await conn.execute(SQL_DEVICE, ("wb-0043",))
            other = await cur.fetchone()
            assert other is not None
            await store_packs(conn, other["device_key"], packs)
            for v in await judge(conn, other, packs, now - timedelta(minutes=29)):
                await persist(conn, v, now=now - timedelta(minutes=29), policy=policy)
            # an SOS order resolved as a false alarm: no model judged it, nothing kept
            sos = Verdict(
                detector="sos",
                kind="sos",
                colour=Colour.RED,
                occurred_at=now - timedelta(minutes=20),
                site_id=dev["site_id"],
                idem_key="sos:test",
                fold_key="sos:test",
                fold_s=60,
                explanation="SOS",
                resident_id=dev["resident_id"],
                device_key=dev["device_key"],
            )
            await persist(conn, sos, now=now - timedelta(minutes=20), policy=policy)
            await conn.commit()
            cur = await conn.execute(
                "SELECT o.order_id, o.category, a.device_key FROM dispatch_orders o"
                " JOIN alerts a USING (alert_id) ORDER BY o.order_id"
            )
            orders = await cur.fetchall()
            actor = Actor("staff-homes", user_id=staff["user_id"])
            for o in orders:
                await accept_order(conn, order_id=o["order_id"], actor=actor, now=now)
                handled = o["category"] == "fall" and o["device_key"] != dev["device_key"]
                await resolve_order(
                    conn,
                    order_id=o["order_id"],
                    actor=actor,
                    outcome=Outcome.EMERGENCY_HANDLED if handled else Outcome.FALSE_ALARM,
                    note="sat down hard on the bed",
                    now=now + timedelta(minutes=1),
                )
            await conn.commit()
            return verdicts, int(dev["device_key"])

    verdicts, device_key = asyncio.run(go())
    assert verdicts, "the fall cut must fire the waist model through the worker's path"
    assert {v.details["model_id"] for v in verdicts} == {waist.model_id}
    alerts = query(
        database_url,
        "SELECT alert_id, occurred_at, details FROM alerts WHERE detector = 'acc_fall'"
        " AND device_key = %s",
        (device_key,),
    )
    # two windows of the impact may time it 0.1 s apart (two alerts of one incident): one example
    assert 1 <= len(alerts) <= 2, alerts
    assert {a["details"]["model_id"] for a in alerts} == {waist.model_id}
    alert = min(alerts, key=lambda a: (a["occurred_at"], a["alert_id"]))
    assert waist.model_id.startswith(f"waist-v{waist.card['version']}-")
    assert waist.model_id.endswith(str(waist.card["model_sha256"])[:12])
    examples = query(database_url, "SELECT * FROM fall_examples")
    assert len(examples) == 1, examples  # not the handled fall, not the SOS
    ex = examples[0]
    assert ex["alert_id"] == alert["alert_id"]
    assert ex["device_key"] == device_key
    assert (ex["label"], ex["placement"], ex["model_placement"]) == (
        "false_alarm",
        "waist",
        "waist",
    )
    assert ex["model_id"] == waist.model_id
    assert (ex["labelled_by"], ex["labelled_by_user"]) == ("staff-homes", staff["user_id"])
    assert ex["labelled_at"] == now + timedelta(minutes=1)
    assert ex["impact_at"] == alert["occurred_at"]
    # the samples are the device's packs 10 s either side of the impact, in order
    impact = alert["occurred_at"].timestamp()
    kept = [
        (p["t0"] + dt, v)
        for p in packs
        if impact - BEFORE_S <= p["t0"] <= impact + AFTER_S
        for dt, v in zip(
            p["t_offset"], zip(p["acc_x"], p["acc_y"], p["acc_z"], strict=True), strict=True
        )
    ]
    assert len(ex["t"]) == len(ex["acc_x"]) == len(kept) < len(t) - 5 * 200  # not the first packs
    np.testing.assert_allclose(ex["t"], [k[0] - impact for k in kept], atol=1e-3)
    np.testing.assert_allclose(ex["acc_x"], [k[1][0] for k in kept], rtol=1e-5, atol=1e-4)
    assert -BEFORE_S <= ex["t"][0] < -9
    assert ex["t"][-1] > 2.5

    # retention drops every acc_windows chunk; the example stays
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT drop_chunks('acc_windows', older_than => now() + interval '1 day')")
    assert not query(database_url, "SELECT 1 FROM acc_windows")
    assert len(query(database_url, "SELECT 1 FROM fall_examples")) == 1

    # the retraining command's export reads it back as a training recording
    (exported,) = carers.export(database_url)
    assert (exported.example_id, exported.model_id) == (ex["example_id"], waist.model_id)
    rec = exported.rec()
    assert (rec.dataset, rec.placement, rec.is_fall, rec.activity) == (
        "carer",
        "waist",
        False,
        "false_alarm",
    )
    assert rec.samples.shape == (len(kept), 3)
    assert rec.duration_s > 12

    # the command exports it; no placement asked for has an example of its own: nothing trains
    export = tmp_path / "examples.jsonl"
    status = carers.retrain(
        database_url, placements=("wrist", "chest"), root=tmp_path / "model", export_to=export
    )
    assert status == 0
    (line,) = export.read_text().splitlines()
    assert json.loads(line)["model_id"] == waist.model_id
    assert len(json.loads(line)["xyz"]) == len(kept)
    out = capsys.readouterr().out
    assert "1 carer examples in the database, 1 with at least 6 s of samples" in out
    assert "wrist: no carer examples; model kept" in out
    assert not (tmp_path / "model").exists()

    # the documented command: same export, exit 0 when nothing was refused
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "alerts.evaluate.training.train",
            "--with-carer-examples",
            database_url,
            "--placement",
            "chest",
            "--out",
            str(tmp_path / "model"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "chest: no carer examples; model kept" in done.stdout
