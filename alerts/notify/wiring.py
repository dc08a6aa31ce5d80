"""Settings -> the worker's configuration and its channel adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx2

from alerts.notify.channels import (
    Channel,
    EmailChannel,
    SmsGatewayChannel,
    SmtpConfig,
    WebhookChannel,
)
from alerts.notify.policy import ChannelKind
from alerts.notify.store import NotifyConfig
from devices.settings import Settings


def config_from(settings: Settings) -> NotifyConfig:
    return NotifyConfig(
        lookback=timedelta(seconds=settings.notify_lookback_s),
        batch=settings.notify_batch_max,
        max_attempts=settings.notify_max_attempts,
        backoff_initial_s=settings.notify_backoff_initial_s,
        backoff_max_s=settings.notify_backoff_max_s,
        lease=timedelta(seconds=settings.notify_lease_s),
        timezone=settings.site_timezone,
        summary_hour=settings.notify_summary_hour,
    )


def smtp_from(settings: Settings) -> SmtpConfig:
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        starttls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        timeout_s=settings.smtp_timeout_s,
    )


@asynccontextmanager
async def open_channels(settings: Settings) -> AsyncIterator[Mapping[ChannelKind, Channel]]:
    """One HTTP client shared by the webhook and SMS adapters, closed on exit."""
    timeout = httpx2.Timeout(settings.webhook_timeout_s)
    async with httpx2.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        channels: dict[ChannelKind, Channel] = {
            ChannelKind.WEBHOOK: WebhookChannel(client, allow_hosts=settings.webhook_allow_hosts),
            ChannelKind.EMAIL: EmailChannel(smtp_from(settings)),
            ChannelKind.SMS: SmsGatewayChannel(
                client,
                url=settings.sms_gateway_url,
                body_template=settings.sms_gateway_body,
                id_field=settings.sms_gateway_id_field,
                auth_header=settings.sms_gateway_auth_header.get_secret_value(),
            ),
        }
        yield channels
