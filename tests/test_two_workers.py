"""Two alerts workers share the work; one is killed (``kill -9``) at a random moment in a
stream of SOS presses and comes back: no press is lost, none doubled, none late by more than
a few seconds. Over the real broker, ingest and database."""

from __future__ import annotations

import contextlib
import random
import signal
import time
from datetime import UTC, datetime, timedelta

from tests.dispatch_world import add_responder
from tests.services import Services, query, running, seed, wait_until, worker_env
from tests.test_ingest_integration import _pub, wait_for_ingest

PRESSES = 10
LATE_S = 5.0  # press to order opened, at most, even for the presses the killed worker held


def test_one_of_two_workers_killed_mid_stream_loses_and_doubles_nothing(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    # one SOS device (button or wristband) per resident: presses of one resident fold into one
    by_resident: dict[str, str] = {}
    for d in pop.devices:
        if d.resident and d.kind in ("sos_button", "wristband") and d.resident not in by_resident:
            by_resident[d.resident] = d.device_id
    buttons = sorted(by_resident.values())[:PRESSES]
    assert len(buttons) == PRESSES, (
        f"the demo population has {len(buttons)} residents with SOS devices"
    )
    now = datetime.now(UTC)
    for site in {next(d.site_id for d in pop.devices if d.device_id == b) for b in buttons}:
        add_responder(
            database_url,
            f"carer-{site}",
            site_id=site,
            on_duty=(now - timedelta(hours=1), now + timedelta(hours=8)),
        )
    rng = random.Random(18)
    kill_after = rng.randrange(2, PRESSES - 2)
    env = worker_env(services, database_url)
    sent: dict[str, float] = {}
    with running("ingest", env), contextlib.ExitStack() as later:
        wait_for_ingest(services, database_url, pop)
        with running("alerts", env) as first, running("alerts", env):
            wait_until(
                lambda: (
                    len(
                        query(
                            database_url, "SELECT 1 FROM worker_heartbeats WHERE process = 'alerts'"
                        )
                    )
                    == 2
                ),
                timeout=120,
                what="both workers beating",
            )
            for i, button in enumerate(buttons):
                sent[button] = time.time()
                _pub(
                    services,
                    pop,
                    button,
                    "event",
                    [{"bn": f"{button}:", "bt": sent[button], "n": "sos", "vb": True}],
                )
                if i == kill_after:
                    first.send_signal(signal.SIGKILL)  # whatever it held uncommitted
                    first.wait()
                    later.enter_context(running("alerts", env))  # as run.sh would restart it
                time.sleep(0.3 + rng.random() * 0.4)
            wait_until(
                lambda: (
                    len(
                        query(
                            database_url,
                            "SELECT 1 FROM dispatch_orders WHERE offered_at IS NOT NULL",
                        )
                    )
                    >= PRESSES
                ),
                timeout=60,
                what="every press offered",
            )
    rows = query(
        database_url,
        "SELECT d.device_id, count(DISTINCT a.alert_id) AS alerts, "
        "count(DISTINCT o.order_id) AS orders, min(o.opened_at) AS opened_at, "
        "min(o.offered_at) AS offered_at FROM alerts a JOIN devices d USING (device_key) "
        "JOIN dispatch_orders o ON o.incident_id = a.incident_id GROUP BY d.device_id",
    )
    got = {r["device_id"]: r for r in rows}
    assert sorted(got) == sorted(buttons), "a press was lost"
    assert all((r["alerts"], r["orders"]) == (1, 1) for r in rows), rows
    late = {b: got[b]["opened_at"].timestamp() - sent[b] for b in buttons}
    assert max(late.values()) < LATE_S, late
    steps = query(
        database_url,
        "SELECT order_id, seq, count(*) AS n FROM order_steps "
        "GROUP BY order_id, seq HAVING count(*) > 1",
    )
    assert steps == []
