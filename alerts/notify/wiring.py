"""Settings -> the worker's configuration and its channel adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta

import httpx2

from alerts.notify.channels import (
    Channel,
    EmailChannel,
    SmsGatewayChannel,
    SmtpConfig,
    WebhookChannel,
)
from alerts.notify.cn_sms import AliyunRpc, AliyunSmsChannel, AliyunVoiceChannel, TencentSmsChannel
from alerts.notify.policy import ChannelKind
from alerts.notify.store import NotifyConfig
from alerts.notify.wechat import TokenCache, WeChatTemplateChannel, WeComRobotChannel
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
        voice_after=timedelta(seconds=settings.notify_voice_after_s),
        robot_sites=frozenset(settings.wecom_robot_sites()),
        robot_colours=frozenset(settings.wecom_robot_colours),
        robot_language=settings.wecom_robot_language,
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


def sms_from(settings: Settings, client: httpx2.AsyncClient) -> Channel:
    if settings.sms_provider == "aliyun":
        return AliyunSmsChannel(
            aliyun_rpc(settings, client, settings.aliyun_sms_endpoint),
            sign_name=settings.aliyun_sms_sign_name,
            template_code=settings.aliyun_sms_template_code,
            template_param=settings.aliyun_sms_template_param,
        )
    if settings.sms_provider == "tencent":
        return TencentSmsChannel(
            client,
            endpoint=settings.tencent_sms_endpoint,
            secret_id=settings.tencent_secret_id,
            secret_key=settings.tencent_secret_key.get_secret_value(),
            region=settings.tencent_sms_region,
            sdk_app_id=settings.tencent_sms_sdk_app_id,
            sign_name=settings.tencent_sms_sign_name,
            template_id=settings.tencent_sms_template_id,
            template_params=settings.tencent_sms_template_params,
        )
    return SmsGatewayChannel(
        client,
        url=settings.sms_gateway_url,
        body_template=settings.sms_gateway_body,
        id_field=settings.sms_gateway_id_field,
        auth_header=settings.sms_gateway_auth_header.get_secret_value(),
    )


def check_in_sms_from(settings: Settings, client: httpx2.AsyncClient) -> Channel:
    """The channel for texts to residents: the SMS provider with its check-in template (a
    carrier sends approved templates only), or the generic gateway with the full text."""
    channel = sms_from(settings, client)
    if isinstance(channel, AliyunSmsChannel):
        return replace(
            channel,
            template_code=settings.aliyun_check_in_template_code,
            template_param=settings.aliyun_check_in_template_param,
        )
    if isinstance(channel, TencentSmsChannel):
        return replace(
            channel,
            template_id=settings.tencent_check_in_template_id,
            template_params=settings.tencent_check_in_template_params,
        )
    return channel


@asynccontextmanager
async def open_check_in_sms(settings: Settings) -> AsyncIterator[Channel]:
    async with httpx2.AsyncClient(
        timeout=httpx2.Timeout(settings.webhook_timeout_s), follow_redirects=False
    ) as client:
        yield check_in_sms_from(settings, client)


def aliyun_rpc(settings: Settings, client: httpx2.AsyncClient, endpoint: str) -> AliyunRpc:
    return AliyunRpc(
        client,
        endpoint=endpoint,
        access_key_id=settings.aliyun_access_key_id,
        access_key_secret=settings.aliyun_access_key_secret.get_secret_value(),
        region_id=settings.aliyun_region_id,
    )


@asynccontextmanager
async def open_channels(settings: Settings) -> AsyncIterator[Mapping[ChannelKind, Channel]]:
    """One HTTP client shared by the HTTP adapters (no redirects followed), closed on exit."""
    timeout = httpx2.Timeout(settings.webhook_timeout_s)
    async with httpx2.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        tokens = TokenCache(
            client,
            base_url=settings.wechat_oa_api_base,
            appid=settings.wechat_oa_appid,
            secret=settings.wechat_oa_secret.get_secret_value(),
        )
        channels: dict[ChannelKind, Channel] = {
            ChannelKind.WEBHOOK: WebhookChannel(client, allow_hosts=settings.webhook_allow_hosts),
            ChannelKind.EMAIL: EmailChannel(smtp_from(settings)),
            ChannelKind.SMS: sms_from(settings, client),
            ChannelKind.WECHAT: WeChatTemplateChannel(
                client,
                tokens,
                template_id=settings.wechat_oa_template_id,
                data_template=settings.wechat_oa_template_data,
                link_template=settings.wechat_oa_link,
            ),
            ChannelKind.VOICE: AliyunVoiceChannel(
                aliyun_rpc(settings, client, settings.aliyun_voice_endpoint),
                tts_code=settings.aliyun_voice_tts_code,
                tts_param=settings.aliyun_voice_tts_param,
                called_show_number=settings.aliyun_voice_called_show_number,
                play_times=settings.aliyun_voice_play_times,
            ),
            ChannelKind.WECOM_ROBOT: WeComRobotChannel(
                client,
                keys=settings.wecom_robot_sites(),
                base_url=settings.wecom_robot_api_base,
                msgtype=settings.wecom_robot_msgtype,
            ),
        }
        yield channels
