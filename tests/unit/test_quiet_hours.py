from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain import zones
from bot.domain.quiet_hours import QuietHours


def at(hour: int, minute: int = 0) -> datetime:
    """A UTC instant; New York is UTC-5 on this November day."""
    return datetime(2026, 11, 28, hour, minute, tzinfo=UTC)


def test_window_wrapping_midnight_in_the_users_zone() -> None:
    quiet = QuietHours.parse("22:00", "07:00", "America/New_York")
    assert quiet is not None
    assert quiet.active(at(3))  # 22:00 local
    assert quiet.active(at(11, 59))  # 06:59 local
    assert not quiet.active(at(12))  # 07:00 local
    assert not quiet.active(at(2, 59))  # 21:59 local


def test_daytime_window() -> None:
    quiet = QuietHours.parse("12:00", "13:00", "Europe/Paris")
    assert quiet is not None
    assert quiet.active(at(11, 30)) and not quiet.active(at(12, 30))


def test_incomplete_or_invalid_settings_hold_nothing() -> None:
    assert QuietHours.parse(None, "07:00", "UTC") is None
    assert QuietHours.parse("22:00", "07:00", "Mars/Olympus") is None
    assert QuietHours.parse("25:00", "07:00", "UTC") is None
    assert QuietHours.parse("07:00", "07:00", "UTC") is None


@pytest.mark.parametrize("name", ["", "Mars/Olympus_Mons", "../../etc/passwd", "Europe/Paris\x00", 7])
def test_one_zone_check_refuses_what_zoneinfo_cannot_load(name: object) -> None:
    """Every stored zone (quiet hours, digests, Slack's tz, a typed zone) goes through zones.zone."""
    assert zones.zone(name) is None
    assert QuietHours.parse("22:00", "07:00", name if isinstance(name, str) else None) is None


def test_one_zone_check_loads_a_real_zone() -> None:
    loaded = zones.zone("America/Sao_Paulo")
    assert loaded is not None and loaded.key == "America/Sao_Paulo"
