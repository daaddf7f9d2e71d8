"""Time zones as people and Slack name them: one check for every setting that stores a zone name."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: object) -> ZoneInfo | None:
    """The IANA zone `name`, or None when zoneinfo cannot load it: not a string, empty, unknown, or
    malformed (zoneinfo raises ValueError for names such as "../etc/passwd", not ZoneInfoNotFoundError)."""
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
