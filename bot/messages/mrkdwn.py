"""Safe construction of Slack mrkdwn and plain_text strings.

Slack decodes exactly three entities (``&amp;``, ``&lt;``, ``&gt;``) and treats anything between ``<`` and
``>`` as control markup: a Canvas conference titled ``<!channel>`` would otherwise ping a whole channel.
Every string that did not originate in this code base must pass through :func:`escape` before it is
placed in a mrkdwn field.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

ELLIPSIS = "…"
# Slack refuses a Block Kit button ``url`` longer than this; no link of ours is longer either.
MAX_LINK_URL = 3000
# Labels of letters (any script, for IDN hosts), digits, "-" and "_", dot-separated, optional final dot.
_HOSTNAME = re.compile(r"(?:[^\W_]|[-_])+(?:\.(?:[^\W_]|[-_])+)*\.?")

# Longest entity we emit is "&amp;" (5 chars); anything longer after an "&" cannot be one of ours.
_MAX_ENTITY_LEN = 5
# Characters that glue onto the previous one; cutting just before them leaves a broken glyph.
_JOINERS = frozenset({"\u200d", "\ufe0e", "\ufe0f"})
_ENTITIES = ("&amp;", "&lt;", "&gt;")


def escape(text: str | None) -> str:
    """Escape the three characters Slack's mrkdwn parser reacts to (``&`` first, so nothing is doubled)."""
    if text is None:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo Slack's own escaping of user-typed text (slash-command ``text`` arrives entity-encoded).

    ``&amp;`` is decoded last so ``&amp;lt;`` (a user literally typing ``&lt;``) becomes ``&lt;``, not ``<``.
    """
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def safe_link_url(url: str | None, *, max_length: int = MAX_LINK_URL) -> str | None:
    """The one test for "may this become a clickable link": the URL to use, or None.

    A URL from Canvas (a server-filled ``join_url``, a recording's playback URL) is attacker-chosen text.
    Only an absolute ``http``/``https`` URL with a real host is accepted: ``javascript:``, ``data:``, a
    relative path, ``!channel`` or ``@U0001`` (which Slack would read as a mention once inside ``<...>``)
    are refused. So are URLs with whitespace or control/format characters (not valid URLs; they hide
    what is shown), with user-info (``https://canvas.example@evil.example``) and with any character in the
    host that a hostname cannot hold (``http://x|<!here>``). ``|``, ``<`` and ``>`` elsewhere (path, query,
    fragment) are percent-encoded, which any web server treats as the same URL and which can no longer end
    the URL or close Slack's markup. The result is also what a Block Kit button ``url`` may carry; callers
    placing it in mrkdwn must still entity-escape it (:func:`link` does). ``max_length`` applies to the
    result (Slack refuses button URLs over 3000 characters).
    """
    if url is None:
        return None
    candidate = url.strip()
    if not candidate or any(_is_hidden(ch) for ch in candidate):
        return None
    try:
        parts = urlsplit(candidate)
        parts.port  # noqa: B018 - raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc:
        return None
    if not _valid_host(_host_of(parts.netloc)):
        return None
    cleaned = candidate.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return cleaned if len(cleaned) <= max_length else None


def _is_hidden(ch: str) -> bool:
    """Whitespace and control/format/unassigned characters (bidi overrides, zero-width joiners...)."""
    return ch.isspace() or unicodedata.category(ch)[0] in ("C", "Z")


def _host_of(netloc: str) -> str:
    """``netloc`` without its port; a bracketed IPv6 literal keeps its brackets."""
    if netloc.startswith("["):
        return netloc[: netloc.find("]") + 1]
    return netloc.partition(":")[0]


def _valid_host(host: str) -> bool:
    """A DNS name (ASCII or internationalised labels) or a bracketed IPv6 literal; nothing else."""
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    return bool(_HOSTNAME.fullmatch(host))


def link(url: str | None, label: str, *, max_url_length: int = MAX_LINK_URL) -> str:
    """A mrkdwn hyperlink ``<url|label>``, or just the escaped label when the URL may not be a link.

    The label is escaped; the URL passes :func:`safe_link_url` and is entity-escaped (Slack entity-decodes
    the whole message, links included), so neither can break out of the markup or become a mention.
    """
    safe = safe_link_url(url, max_length=max_url_length)
    if safe is None:
        return escape(label)
    return f"<{escape(safe)}|{escape(label)}>"


def fitting_link(url: str | None, label: str, room: int) -> str:
    """`link(url, label)` when the whole link, escaped, fits in `room` characters; else the escaped
    label. A link is never cut: a truncated `<url|label` would lose the label too (and `&` in a URL
    grows fivefold as `&amp;`, so the raw URL's length does not tell)."""
    shown = link(url, label)
    return shown if slack_length(shown) <= room else escape(label)


def bare_link(url: str | None) -> str:
    """A mrkdwn auto-link ``<url>`` (shows the URL itself, e.g. in notification text); "" when the URL
    may not be a link."""
    safe = safe_link_url(url)
    return f"<{escape(safe)}>" if safe is not None else ""


def slack_length(text: str) -> int:
    """Length as Slack may count it: UTF-16 code units.

    Slack documents limits in "characters" without saying which; counting UTF-16 units is never smaller
    than counting code points, so a string that fits by this measure fits by either.
    """
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _fit(text: str, budget: int) -> int:
    """Index of the longest prefix of ``text`` whose :func:`slack_length` is at most ``budget``."""
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > budget:
            return index
    return len(text)


def _glyph_boundary(text: str, cut: int) -> int:
    """Move ``cut`` left so it does not separate a base character from its accents, variation selector
    or zero-width-joined emoji parts (which would show a different or broken glyph)."""
    while 0 < cut < len(text) and (
        unicodedata.combining(text[cut]) or text[cut] in _JOINERS or text[cut - 1] == "\u200d"
    ):
        cut -= 1
    return cut


def _markup_boundary(text: str, cut: int) -> int:
    """Move ``cut`` left so ``text[:cut]`` ends neither inside an entity nor inside ``<...>`` markup."""
    amp = text.rfind("&", max(0, cut - _MAX_ENTITY_LEN + 1), cut)
    if amp != -1 and text.startswith(_ENTITIES, amp) and ";" not in text[amp:cut]:
        cut = amp
    opening = text.rfind("<", 0, cut)
    if opening != -1 and text.find(">", opening, cut) == -1:
        cut = opening
    return cut


def truncate(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` characters, ending with "…" when something was cut.

    Works on already-escaped mrkdwn: a cut never splits ``&amp;``-style entities (which would render as
    a stray ``&am``) nor an unfinished ``<...>`` link or mention.
    """
    if limit <= 0:
        return ""
    if slack_length(text) <= limit:
        return text
    cut = _fit(text, limit - slack_length(ELLIPSIS))
    cut = _glyph_boundary(text, _markup_boundary(text, cut))
    return text[:cut].rstrip() + ELLIPSIS


def plain_text(text: str | None, limit: int) -> str:
    """Text for a ``plain_text`` object: never escaped (Slack shows it verbatim), only shortened.

    A plain_text field cannot be empty in Slack, so an empty input becomes a single space rather than an
    ``invalid_blocks`` error.
    """
    raw = (text or "").strip()
    if not raw:
        return " "
    if limit <= 0:
        return ""
    if slack_length(raw) <= limit:
        return raw
    cut = _glyph_boundary(raw, _fit(raw, limit - slack_length(ELLIPSIS)))
    return raw[:cut].rstrip() + ELLIPSIS
