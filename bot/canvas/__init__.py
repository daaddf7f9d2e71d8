"""Async Canvas LMS client: conferences, courses, groups, OAuth2 linking, typed errors."""

from bot.canvas.client import MAX_PAGES, CanvasClient
from bot.canvas.errors import (
    CanvasError,
    Forbidden,
    InsufficientScope,
    InvalidToken,
    NotFound,
    OAuthError,
    Throttled,
    Transient,
)
from bot.canvas.oauth import CanvasOAuth, authorize_url
from bot.domain.models import (
    LIVE_WINDOW,
    CanvasUser,
    Conference,
    Course,
    Enrollment,
    Group,
    PlaybackFormat,
    Recording,
    TokenGrant,
)

__all__ = [
    "LIVE_WINDOW",
    "MAX_PAGES",
    "CanvasClient",
    "CanvasError",
    "CanvasOAuth",
    "CanvasUser",
    "Conference",
    "Course",
    "Enrollment",
    "Forbidden",
    "Group",
    "InsufficientScope",
    "InvalidToken",
    "NotFound",
    "OAuthError",
    "PlaybackFormat",
    "Recording",
    "Throttled",
    "TokenGrant",
    "Transient",
    "authorize_url",
]
