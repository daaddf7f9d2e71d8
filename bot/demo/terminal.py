"""The demo's Slack messages printed in a terminal, from the same parsed spans the page renders.

Every piece of text passes through `clean`, so a Canvas title cannot move the cursor or reorder text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.demo.spans import clean, clock, parse_mrkdwn

JSON = dict[str, Any]
_STYLE_CODES = {"code": "36", "bold": "1", "italic": "3", "strike": "9"}


@dataclass(frozen=True, slots=True)
class Ansi:
    """Terminal styling; `Ansi(False)` gives plain text (pipes, CI logs, tests)."""

    enabled: bool

    def __call__(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and text else text

    def mrkdwn(self, text: str, names: Mapping[str, str] | None = None) -> str:
        out: list[str] = []
        for span in parse_mrkdwn(text, names):
            shown = clean(span.text)
            if span.kind == "link":
                url = clean(span.url)
                out.append(self("4;34", shown) if shown == url else f"{self('4', shown)} ({self('34', url)})")
            elif span.kind == "mention":
                out.append(self("34", shown))
            else:
                out.extend(
                    self(";".join(_STYLE_CODES[s] for s in run.styles), run.text) if run.styles else run.text
                    for run in span.runs
                )
        return "".join(out)


def _text(obj: Any, ansi: Ansi, names: Mapping[str, str]) -> str:
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text") or "")
    return ansi.mrkdwn(text, names) if obj.get("type") == "mrkdwn" else clean(text)


def _element(element: Any, ansi: Ansi, names: Mapping[str, str]) -> str:
    if not isinstance(element, dict):
        return ""
    if element.get("type") == "button":
        label = clean(str((element.get("text") or {}).get("text") or ""))
        url = clean(str(element.get("url") or ""))
        button = ansi("1;42;97" if element.get("style") == "primary" else "1;7", f"[{label}]")
        return f"{button} {ansi('4;34', url)}" if url else button
    if element.get("type") == "image":
        return f"[{clean(str(element.get('alt_text') or 'image'))}]"
    return _text(element, ansi, names)


def _block(block: Any, ansi: Ansi, names: Mapping[str, str]) -> list[str]:
    if not isinstance(block, dict):
        return []
    kind = block.get("type")
    if kind == "header":
        return [ansi("1;97", _text(block.get("text"), ansi, names))]
    if kind == "section":
        lines = _text(block.get("text"), ansi, names).splitlines()
        lines += [_text(field, ansi, names) for field in block.get("fields") or []]
        if block.get("accessory"):
            lines.append(_element(block["accessory"], ansi, names))
        return lines
    if kind == "context":
        return [ansi("2", "  ·  ".join(_element(e, ansi, names) for e in block.get("elements") or []))]
    if kind == "actions":
        return ["  ".join(_element(e, ansi, names) for e in block.get("elements") or [])]
    if kind == "divider":
        return [ansi("2", "─" * 40)]
    return [ansi("2", f"[{clean(str(kind))} block]")]


def message_lines(
    message: JSON, heading: str, ansi: Ansi, names: Mapping[str, str] | None = None
) -> list[str]:
    """A message for the terminal: a rule with who/when, then one bar-prefixed line per visual line."""
    names = names or {}
    blocks = message.get("blocks") or []
    body: list[str] = []
    for block in blocks:
        body.extend(_block(block, ansi, names))
    if not blocks:
        body = ansi.mrkdwn(str(message.get("text") or ""), names).splitlines()
    label = f"── {clean(heading)} · {clock(message.get('ts'))} "
    edited = "(edited) " if message.get("edits") else ""
    rule = ansi("35", label) + ansi("1;33", edited) + ansi("35", "─" * max(4, 64 - len(label + edited)))
    bar = ansi("35", "│")
    return [rule, *(f"{bar} {line}" for line in body)]
