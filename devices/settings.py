"""One settings object for every process, read from ELDERCARE_* environment variables.

Build it in ``main()`` (``Settings()``), never at import time, and pass it down.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import available_timezones

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from devices.domain import DEFAULT_TIMEZONE, Colour

# Variables this code no longer reads. Set, they would be ignored in silence (the deployment
# would believe something the code does not do), so a process refuses to start instead.
REMOVED: Final = {
    "ELDERCARE_MQTT_TOPIC_ROOT": "the topic root is part of the device protocol, fixed at "
    "eldercare/v1 in devices/wire.py (docs/device-protocol.md); unset it",
}


class RemovedSettingError(ValueError):
    pass


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ELDERCARE_", extra="ignore")

    def model_post_init(self, context: Any, /) -> None:
        stale = [f"{name}: {why}" for name, why in REMOVED.items() if name in os.environ]
        if stale:
            raise RemovedSettingError("; ".join(stale))

    # PostgreSQL with TimescaleDB (psycopg conninfo URL).
    database_url: str = "postgresql://eldercare@127.0.0.1:5432/eldercare"

    # Passwords of the long-running processes' own database roles (eldercare_ingest,
    # eldercare_alerts, eldercare_api; migration 0023), set by ``devices migrate`` when given.
    database_ingest_password: SecretStr = SecretStr("")
    database_alerts_password: SecretStr = SecretStr("")
    database_api_password: SecretStr = SecretStr("")

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
    # TLS to the broker: the CA file that signed its server certificate (devices.tls or the
    # site's own PKI). Set, every connection of this process to the broker is TLS, verified
    # against it (ingest, the alerts worker's command publisher, the broker-admin calls of
    # provision/retire/broker-sync); unset, plain MQTT (compose: the internal listener).
    mqtt_tls_ca_file: Path | None = None
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
    # A backlog (readings older than ingest_late_after_s, sent after a reconnect) over the
    # device rate is paced, not dropped: released at this many messages/s per device, with at
    # most ingest_backlog_max messages held (unacknowledged) per worker connection.
    ingest_backlog_rate: float = 50.0
    ingest_backlog_max: int = Field(default=1000, ge=0)
    # A reading this much older than its arrival is counted as late (stored all the same).
    ingest_late_after_s: float = 60.0
    # device_status.last_seen_at is refreshed at most this often per device and worker (every
    # message rewriting ~one row per device was a quarter of the write cost); 0 = every batch.
    ingest_last_seen_resolution_s: float = 10.0

    # Alerts worker.
    alerts_batch_max: int = 500
    alerts_poll_interval_s: float = 1.0
    # While a life-safety lane process (python -m alerts lane) beats, the main workers leave it
    # each sos, fall and smoke row for this long before they take it themselves.
    alerts_lane_hold_s: float = Field(default=1.0, ge=0, le=10)
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

    # Periodic (tick) detectors and the inactivity routine. At most 60 s: an inactivity alert
    # is raised from one 60-s tick before its deadline (alerts.detection.check_in.TICK_S), so
    # a longer tick would alert after the bound the care plan promises.
    tick_interval_s: float = Field(default=60.0, gt=0, le=60.0)
    routine_refit_interval_s: float = 24 * 3600.0
    routine_history_days: int = 28
    # Site caps on a quiet spell by resting place (a care plan's "inactivity" overrides them):
    # at home and active by day, seated (also in bed, and active where no seat sensor can
    # tell sitting), in the bathroom. The night is the care plan's sleep window.
    inactivity_default_day_max_s: float = 2 * 3600.0
    inactivity_default_seated_max_s: float = 4 * 3600.0
    inactivity_default_bathroom_max_s: float = 45 * 60.0
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
    # Which provider carries a family's "sms" channel. Provider endpoints are settings (an
    # administrator's choice, not a family's), so they skip the webhook egress check; tests
    # point them at local emulators. Templates are JSON string.Templates over $resident
    # $event $time $subject $text $colour $notification_id (see docs/notifications.md).
    sms_provider: Literal["gateway", "aliyun", "tencent"] = "gateway"
    # Aliyun AccessKey, shared by SMS (Dysmsapi SendSms) and voice (Dyvmsapi SingleCallByTts).
    aliyun_access_key_id: str = ""
    aliyun_access_key_secret: SecretStr = SecretStr("")
    aliyun_region_id: str = "cn-hangzhou"
    aliyun_sms_endpoint: str = "https://dysmsapi.aliyuncs.com/"
    aliyun_sms_sign_name: str = ""
    aliyun_sms_template_code: str = ""
    aliyun_sms_template_param: str = '{"name": "$resident", "event": "$event", "time": "$time"}'
    # Tencent Cloud SMS (SendSms 2021-01-11, TC3-HMAC-SHA256).
    tencent_secret_id: str = ""
    tencent_secret_key: SecretStr = SecretStr("")
    tencent_sms_endpoint: str = "https://sms.tencentcloudapi.com/"
    tencent_sms_region: str = "ap-guangzhou"
    tencent_sms_sdk_app_id: str = ""
    tencent_sms_sign_name: str = ""
    tencent_sms_template_id: str = ""
    tencent_sms_template_params: str = '["$resident", "$event", "$time"]'
    # SMS check-ins (a quiet resident with no button, care plan check_in_by_phone): the same
    # provider with an approved check-in template ("${name}您好，如果您一切安好请回复1，
    # 需要帮助请回复2"); empty: such texts are not sent (the check-in alerts at its due time).
    # The generic gateway sends the full text ($text). Replies come back to
    # POST /api/inbound/sms/{aliyun|tencent|gateway}/{inbound_sms_token}; empty token: off.
    aliyun_check_in_template_code: str = ""
    aliyun_check_in_template_param: str = '{"name": "$resident"}'
    tencent_check_in_template_id: str = ""
    tencent_check_in_template_params: str = '["$resident"]'
    inbound_sms_token: SecretStr = SecretStr("")
    # the provider's callback addresses, e.g. '["47.0.0.0/8", "2408:4000::/24"]' (the API's
    # client address: behind a proxy, uvicorn --proxy-headers); empty: any address with the key
    inbound_sms_allow_nets: list[IPv4Network | IPv6Network] = []
    # Voice calls (Aliyun SingleCallByTts) for red alerts: a family's "voice" channel is
    # called when the text before it is not read (POST .../deliveries/{id}/read) within
    # notify_voice_after_s, or not delivered by then; 0 = only after text channels fail.
    aliyun_voice_endpoint: str = "https://dyvmsapi.aliyuncs.com/"
    aliyun_voice_tts_code: str = ""
    aliyun_voice_tts_param: str = '{"name": "$resident", "event": "$event"}'
    aliyun_voice_called_show_number: str = ""
    aliyun_voice_play_times: int = Field(default=2, ge=1, le=3)
    notify_voice_after_s: float = Field(default=120.0, ge=0)
    # WeChat Official Account template messages to a family member's openid.
    wechat_oa_api_base: str = "https://api.weixin.qq.com"
    wechat_oa_appid: str = ""
    wechat_oa_secret: SecretStr = SecretStr("")
    wechat_oa_template_id: str = ""
    wechat_oa_template_data: str = (
        '{"thing1": {"value": "$resident"}, "thing2": {"value": "$event"},'
        ' "time3": {"value": "$time"}}'
    )
    wechat_oa_link: str = (
        ""  # the message's link, e.g. https://care.example.cn/family?n=$notification_id
    )
    # WeChat Work group robots of the care stations: a JSON object {"<site_id>": "<key>"}.
    # New alerts of the chosen colours at a listed site go to its group through the outbox.
    wecom_robot_api_base: str = "https://qyapi.weixin.qq.com"
    wecom_robot_keys: SecretStr = SecretStr("")
    wecom_robot_colours: frozenset[Colour] = frozenset({Colour.RED, Colour.YELLOW})
    wecom_robot_msgtype: Literal["text", "markdown"] = "markdown"
    wecom_robot_language: Literal["en", "zh"] = "zh"

    def wecom_robot_sites(self) -> dict[str, str]:
        """The robot keys by site id (the secret setting parsed; a malformed one is an error
        at start, not a silent nothing)."""
        raw = self.wecom_robot_keys.get_secret_value().strip()
        if not raw:
            return {}
        keys = json.loads(raw)
        if not isinstance(keys, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in keys.items()
        ):
            raise ValueError('ELDERCARE_WECOM_ROBOT_KEYS is a JSON object {"site": "key"}')
        return keys

    # The dead-man's switch (alerts/watchdog): every worker beats this often; a watcher (each
    # alerts worker and each API process) checks every watchdog_interval_s and raises a
    # technical alert when a worker is silent for heartbeat_stale_s, when a queue lags beyond
    # its bound, when a device floods or items are quarantined.
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    heartbeat_stale_s: float = Field(default=30.0, gt=0)
    watchdog_interval_s: float = Field(default=10.0, gt=0)
    # processes that must always have a live worker, comma-separated
    watch_processes: str = "alerts,ingest,api"
    watch_outbox_lag_s: float = 60.0
    watch_escalation_lag_s: float = 60.0
    watch_notify_lag_s: float = 600.0
    watch_texts_lag_s: float = 300.0  # check-in texts to residents waiting to be sent
    watch_flood_window_s: float = 120.0
    # where technical alerts go, beside the wall: a JSON list of {"kind", "address"} with kind
    # webhook, email or sms, e.g. '[{"kind": "sms", "address": "+8613800000000"}]'
    technical_alert_channels: list[dict[str, str]] = Field(default_factory=list)
    technical_alert_webhook_secret: SecretStr = SecretStr("")
    # the alerts worker's /healthz, /readyz and /metrics (0: not served)
    alerts_probe_port: int = 0
    probe_host: str = "127.0.0.1"

    # Retention of raw telemetry (drop_chunks when no licence-managed policy is available).
    telemetry_retention_days: int = 400
    retention_check_interval_s: float = 3600.0

    # API.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    token_ttl_s: int = 12 * 3600
    # Prometheus scrapers send this as a bearer token to the API's /metrics (unset: 404).
    metrics_token: SecretStr = SecretStr("")
    # the API process runs a watchdog too: it tells the centre when the alerts worker died
    watchdog_in_api: bool = True
    # Live event streams: a keepalive (and a check that the token still holds) this often.
    live_keepalive_s: float = 15.0

    # The installation's language and time zone (issue 14): pages, alert explanations,
    # notifications, daily summaries and API errors default to them; each user may choose
    # their own language (users.locale). zh-CN or en.
    site_locale: Literal["zh-CN", "en"] = "zh-CN"
    site_timezone: str = DEFAULT_TIMEZONE

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
