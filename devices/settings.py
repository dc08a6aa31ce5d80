"""One settings object for every process, read from ELDERCARE_* environment variables.

Build it in ``main()`` (``Settings()``), never at import time, and pass it down.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import available_timezones

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ELDERCARE_", extra="ignore")

    # PostgreSQL with TimescaleDB (psycopg conninfo URL).
    database_url: str = "postgresql://eldercare@127.0.0.1:5432/eldercare"

    # MQTT broker.
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str = "ingest"
    mqtt_password: SecretStr = SecretStr("")
    # Service accounts written into the broker's password file by ``devices broker-sync``.
    broker_ingest_password: SecretStr = SecretStr("")
    broker_backend_password: SecretStr = SecretStr("")
    # The broker-admin account (dynamic-security control topic): ``devices provision`` adds the
    # new device to the running broker with it, ``broker-sync --reload`` removes retired ones.
    broker_admin_password: SecretStr = SecretStr("")
    mqtt_topic_root: str = "eldercare/v1"
    mqtt_share_group: str = "ingest"
    mqtt_client_id: str = "eldercare-ingest-1"
    mqtt_session_expiry_s: int = 7 * 24 * 3600
    mqtt_receive_maximum: int = 5000

    # Ingest batching and input limits.
    ingest_batch_max: int = 2000
    ingest_batch_wait_ms: int = 20
    # Batches written at once, each on its own connection (acks still leave in order).
    ingest_writes_in_flight: int = Field(default=2, ge=1, le=8)
    ingest_queue_max: int = 20000
    max_payload_bytes: int = 256 * 1024
    max_future_skew_s: float = 300.0
    # Per-device rate limit (token bucket): messages/s on average and burst; 0 = off.
    ingest_device_rate: float = 50.0
    ingest_device_burst: float = 500.0
    # A reading this much older than its arrival is counted as late (stored all the same).
    ingest_late_after_s: float = 60.0
    # device_status.last_seen_at is refreshed at most this often per device and worker (every
    # message rewriting ~one row per device was a quarter of the write cost); 0 = every batch.
    ingest_last_seen_resolution_s: float = 10.0

    # Alerts worker.
    alerts_batch_max: int = 500
    alerts_poll_interval_s: float = 1.0
    # Device-reported falls: below min the device itself doubts it; at or above confirm the
    # alert is raised at once; in between the resident's other sensors decide (fusion).
    fall_min_confidence: float = 0.2
    fall_confirm_confidence: float = 0.7
    checks_poll_interval_s: float = 1.0
    # Timer-driven detectors (vital signs, device health) run this often.
    periodic_interval_s: float = 15.0
    low_battery_percent: float = 15.0
    # Detectors to leave out of the registry by name (e.g. "smoke"), comma-separated: for
    # showing that the conformance run catches a broken backend.
    disabled_detectors: str = ""
    # Let a conformance run set a simulated detector clock (PUT /api/admin/sim-clock) that
    # the time-driven detectors then evaluate at. Never in production: off by default.
    sim_clock_allowed: bool = False

    # Periodic (tick) detectors and the inactivity routine.
    tick_interval_s: float = 60.0
    routine_refit_interval_s: float = 24 * 3600.0
    routine_history_days: int = 28
    inactivity_default_day_max_s: float = 2 * 3600.0
    inactivity_default_night_max_s: float = 9 * 3600.0
    inactivity_default_bathroom_max_s: float = 40 * 60.0
    inactivity_margin_s: float = 20 * 60.0

    # Dispatch: acceptance deadline by colour (seconds after the order opens).
    accept_within_red_s: int = 60
    accept_within_yellow_s: int = 300
    accept_within_green_s: int = 1800

    # Family notifications (alerts/notify): worker pacing, retries, summary, channels.
    notify_poll_interval_s: float = 1.0
    notify_batch_max: int = 50
    notify_lookback_s: int = 24 * 3600  # alerts/order changes older than this are not sent
    notify_max_attempts: int = 3  # failed attempts on one channel before the next channel
    notify_backoff_initial_s: float = 30.0
    notify_backoff_max_s: float = 1800.0
    notify_lease_s: float = 120.0  # a claimed row is retried after this if the worker dies
    notify_summary_hour: int = Field(default=8, ge=0, le=23)
    webhook_timeout_s: float = 10.0
    # Hosts a family's webhook may reach although they are not public addresses (an internal
    # relay an administrator trusts); JSON list, e.g. '["hooks.internal"]'. Everything else
    # must resolve to public addresses only.
    webhook_allow_hosts: frozenset[str] = frozenset()
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "eldercare@localhost"
    smtp_timeout_s: float = 10.0
    # A generic HTTP SMS gateway: POST to the URL with the JSON body template filled in
    # ($to, $text, $resident, $event, $time); the receipt is the response's id field.
    sms_gateway_url: str = ""
    sms_gateway_body: str = '{"to": "$to", "text": "$text"}'
    sms_gateway_auth_header: SecretStr = SecretStr("")  # sent as Authorization when set
    sms_gateway_id_field: str = "message_id"

    # Retention of raw telemetry (drop_chunks when no licence-managed policy is available).
    telemetry_retention_days: int = 400
    retention_check_interval_s: float = 3600.0

    # API.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    token_ttl_s: int = 12 * 3600
    # Live event streams: a keepalive (and a check that the token still holds) this often.
    live_keepalive_s: float = 15.0

    # The installation's language and time zone (issue 14): pages, alert explanations,
    # notifications, daily summaries and API errors default to them; each user may choose
    # their own language (users.locale). zh-CN or en.
    site_locale: Literal["zh-CN", "en"] = "zh-CN"
    site_timezone: str = "Asia/Shanghai"

    run_dir: Path = Field(default=Path(".run"))

    @field_validator("site_timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        if v not in available_timezones():
            raise ValueError(f"unknown IANA time zone {v!r}")
        return v

    @property
    def token_ttl(self) -> timedelta:
        return timedelta(seconds=self.token_ttl_s)
