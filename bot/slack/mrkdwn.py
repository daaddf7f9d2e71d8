"""Safe construction of Slack mrkdwn and plain_text strings.

Slack decodes exactly three entities (``&amp;``, ``&lt;``, ``&gt;``) and treats anything between ``<`` and
``>`` as control markup: a Canvas conference titled ``<!channel>`` would otherwise ping a whole channel.
Every string that did not originate in this code base must pass through :func:`escape` before it is
placed in a mrkdwn field.
"""

from __future__ import annotations

import unicodedata

ELLIPSIS = "…"

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


def safe_url(url: str) -> str:
    """Make a URL safe to embed inside ``<...>`` markup.

    ``|`` would end the URL and start the label, ``>`` would close the markup early and let the rest of the
    string be parsed as mrkdwn; percent-encoding them keeps the URL equivalent for any web server. ``&`` is
    entity-escaped because Slack entity-decodes the whole message, links included.
    """
    cleaned = "".join(ch for ch in url.strip() if not ch.isspace())
    cleaned = cleaned.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return cleaned.replace("&", "&amp;")


def link(url: str, label: str) -> str:
    """A mrkdwn hyperlink ``<url|label>`` whose label is escaped and whose URL cannot break out."""
    return f"<{safe_url(url)}|{escape(label)}>"


def bare_link(url: str) -> str:
    """A mrkdwn auto-link ``<url>`` (shows the URL itself, e.g. in notification text)."""
    return f"<{safe_url(url)}>"


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
