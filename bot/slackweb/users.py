"""A Slack user's time zone (users.info `tz`), checked to be one zoneinfo knows."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.zones import zone

log = logging.getLogger(__name__)


def known_zone(name: object) -> bool:
    return zone(name) is not None


async def slack_time_zone(client: AsyncWebClient, user_id: str) -> str | None:
    """None when Slack does not answer or gives no usable zone (callers pick their own fallback)."""
    try:
        user = (await client.users_info(user=user_id)).get("user") or {}
    except (SlackApiError, TimeoutError, OSError) as error:
        log.info("users.info failed while looking up a time zone: %s", type(error).__name__)
        return None
    tz = user.get("tz")
    return tz if known_zone(tz) else None
