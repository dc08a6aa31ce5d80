"""The alerts worker as a real process: ``help_coming`` reaches the resident's device over
the broker when an order is accepted, and an escalation survives a killed worker."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from alerts.dispatch.orders import Actor, accept_order
from tests.dispatch_world import add_responder, arun, raise_sos
from tests.services import Services, device, query, running, seed, wait_until, worker_env


def _env(services: Services, database_url: str) -> dict[str, str]:
    """The alerts worker signs in with its own account, as compose gives it (``backend``)."""
    return worker_env(services, database_url, username="backend")


class Inbox:
    """A device's own MQTT session, subscribed to its ``cmd`` topic."""

    def __init__(self, services: Services, username: str, password: str, topic: str) -> None:
        self.messages: list[dict[str, object]] = []
        self.subscribed = False
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=username,
            protocol=mqtt.MQTTv5,
        )
        client.username_pw_set(username, password)
        client.on_message = lambda _c, _u, msg: self.messages.append(json.loads(msg.payload))
        client.on_subscribe = lambda *_a: setattr(self, "subscribed", True)
        client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        client.connect("127.0.0.1", services.broker.port)
        client.loop_start()
        self.client = client
        wait_until(lambda: self.subscribed, what=f"{username} subscribed")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_accepting_an_order_tells_the_residents_device_help_is_coming(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    btn, other = device(pop, "btn-0042"), device(pop, "btn-0043")
    mine = Inbox(
        services, btn.device_id, btn.password, f"eldercare/v1/{btn.site_id}/{btn.device_id}/cmd"
    )
    theirs = Inbox(
        services,
        other.device_id,
        other.password,
        f"eldercare/v1/{other.site_id}/{other.device_id}/cmd",
    )
    try:
        order = raise_sos(database_url, "btn-0042", at=datetime.now(UTC))
        [alert] = query(database_url, "SELECT alert_id FROM alerts")
        with running("alerts", _env(services, database_url)):
            staff = Actor("staff-homes")
            arun(
                database_url,
                lambda c: accept_order(c, order_id=order, actor=staff, now=datetime.now(UTC)),
            )
            # the alerts process starts in this wait (its fall models load first): the bound
            # is its start-up on a loaded machine, not the command's latency
            wait_until(lambda: bool(mine.messages), timeout=60, what="help_coming on the device")
            wait_until(
                lambda: (
                    not query(database_url, "SELECT 1 FROM device_commands WHERE sent_at IS NULL")
                ),
                what="commands marked sent",
            )
        assert mine.messages == [{"type": "help_coming", "alert_id": str(alert["alert_id"])}]
        assert theirs.messages == []
        # The button pressed and the resident's own wristband; each published once.
        cmds = query(database_url, "SELECT topic, attempts FROM device_commands ORDER BY topic")
        assert cmds == [
            {"topic": "eldercare/v1/home-17/btn-0042/cmd", "attempts": 1},
            {"topic": "eldercare/v1/home-17/wb-0042/cmd", "attempts": 1},
        ]
    finally:
        mine.close()
        theirs.close()


def test_a_killed_worker_process_neither_loses_nor_doubles_a_step(
    services: Services, database_url: str
) -> None:
    seed(services, database_url)
    now = datetime.now(UTC)
    duty = (now - timedelta(hours=1), now + timedelta(hours=8))
    a = add_responder(database_url, "carer-a", site_id="sunrise", on_duty=duty)
    b = add_responder(database_url, "carer-b", site_id="sunrise", on_duty=duty)
    order = raise_sos(database_url, "sos-r101", at=now)
    env = _env(services, database_url)

    def done() -> list[tuple[int, int | None]]:
        rows = query(database_url, "SELECT seq, responder_id FROM order_steps ORDER BY seq")
        return [(r["seq"], r["responder_id"]) for r in rows]

    with running("alerts", env) as first:
        wait_until(lambda: len(done()) == 1, timeout=60, what="first step")  # a cold start
        first.send_signal(signal.SIGKILL)  # no clean shutdown
        first.wait()
    assert done() == [(1, a)]
    # The wait for an accept runs out (moved, not slept): the next worker takes step 2, once.
    query(
        database_url,
        "UPDATE dispatch_orders SET step_due_at = now() WHERE order_id = %s RETURNING 1",
        (order,),
    )
    with running("alerts", env), running("alerts", env):  # two workers at once
        wait_until(lambda: len(done()) == 2, timeout=60, what="second step")
    assert done() == [(1, a), (2, b)]
    [row] = query(database_url, "SELECT state, offered_to, step_due_at FROM dispatch_orders")
    assert (row["state"], row["offered_to"]) == ("offered", b)
    assert row["step_due_at"] > datetime.now(UTC)
