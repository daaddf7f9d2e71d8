"""A Slack user's time zone and locale (users.info `tz`, and `locale` when asked with `include_locale`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.zones import zone

log = logging.getLogger(__name__)


def known_zone(name: object) -> bool:
    return zone(name) is not None


@dataclass(frozen=True, slots=True)
class SlackProfile:
    """What users.info says about how a user reads: ``locale`` as Slack spells it ("es-ES"), ``tz`` an
    IANA zone zoneinfo knows; either may be None (Slack omits a field, or gives one we cannot use)."""

    locale: str | None
    tz: str | None


async def slack_profile(client: AsyncWebClient, user_id: str) -> SlackProfile | None:
    """users.info with ``include_locale=true`` (Slack leaves `locale` out without it); None when Slack
    does not answer (callers fall back to what they stored, or English)."""
    try:
        user = (await client.users_info(user=user_id, include_locale=True)).get("user") or {}
    except (SlackApiError, TimeoutError, OSError) as error:
        log.info("users.info failed while looking up a locale: %s", type(error).__name__)
        return None
    locale = user.get("locale")
    tz = user.get("tz")
    return SlackProfile(
        locale=locale if isinstance(locale, str) and 0 < len(locale) <= 16 else None,
        tz=tz if known_zone(tz) else None,
    )


async def slack_time_zone(client: AsyncWebClient, user_id: str) -> str | None:
    """None when Slack does not answer or gives no usable zone (callers pick their own fallback)."""
    try:
        user = (await client.users_info(user=user_id)).get("user") or {}
    except (SlackApiError, TimeoutError, OSError) as error:
        log.info("users.info failed while looking up a time zone: %s", type(error).__name__)
        return None
    tz = user.get("tz")
    return tz if known_zone(tz) else None
