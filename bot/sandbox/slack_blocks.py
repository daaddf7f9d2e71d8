"""Block Kit validation with Slack's documented limits.

Real Slack rejects a whole message for one bad block; a sandbox that accepted it would let a
rendering bug ship.  Errors mimic Slack's `invalid_blocks` details (a message plus a json-pointer).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100

_TEXT_TYPES = {"plain_text", "mrkdwn"}
_ELEMENT_TYPES = {
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "timepicker",
    "image",
    "overflow",
    "plain_text_input",
    "number_input",
    "email_text_input",
    "url_text_input",
    "radio_buttons",
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
    "rich_text_input",
}
_BLOCK_TYPES = {
    "section",
    "header",
    "divider",
    "actions",
    "context",
    "image",
    "input",
    "rich_text",
    "markdown",
    "file",
    "video",
}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, pointer: str, message: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def text(
        self, obj: Any, pointer: str, *, limit: int, plain_only: bool = False, required: bool = True
    ) -> None:
        if obj is None:
            if required:
                self.fail(pointer, "missing required field: text")
            return
        if not isinstance(obj, dict):
            self.fail(pointer, "must be an object")
            return
        kind = obj.get("type")
        allowed = {"plain_text"} if plain_only else _TEXT_TYPES
        if kind not in allowed:
            self.fail(f"{pointer}/type", f"must be one of {sorted(allowed)}")
        value = obj.get("text")
        if not isinstance(value, str) or not value:
            self.fail(f"{pointer}/text", "must be a non-empty string")
        elif len(value) > limit:
            self.fail(f"{pointer}/text", f"must be less than {limit + 1} characters")

    def string(self, value: Any, pointer: str, *, limit: int, required: bool = False) -> None:
        if value is None:
            if required:
                self.fail(pointer, "missing required field")
            return
        if not isinstance(value, str):
            self.fail(pointer, "must be a string")
        elif len(value) > limit:
            self.fail(pointer, f"must be less than {limit + 1} characters")

    def url(self, value: Any, pointer: str) -> None:
        """A link button's ``url``: Slack refuses one that is not an absolute http(s) URL or is over 3000
        characters with ``invalid_blocks``, so the sandbox does too (a renderer slip must fail here)."""
        self.string(value, pointer, limit=3000)
        if not isinstance(value, str) or len(value) > 3000:
            return
        try:
            parts = urlsplit(value)
        except ValueError:  # e.g. an unclosed "[" IPv6 host
            parts = urlsplit("")
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            self.fail(pointer, "must be a valid http or https URL")

    def element(self, element: Any, pointer: str) -> None:
        if not isinstance(element, dict) or element.get("type") not in _ELEMENT_TYPES:
            self.fail(pointer, "must be a valid block element")
            return
        self.string(element.get("action_id"), f"{pointer}/action_id", limit=255)
        if element["type"] == "button":
            self.text(element.get("text"), f"{pointer}/text", limit=75, plain_only=True)
            self.url(element.get("url"), f"{pointer}/url")
            self.string(element.get("value"), f"{pointer}/value", limit=2000)
            style = element.get("style")
            if style is not None and style not in ("primary", "danger"):
                self.fail(f"{pointer}/style", "must be one of [danger primary]")
        elif element["type"] == "image":
            self.string(element.get("image_url"), f"{pointer}/image_url", limit=3000, required=True)
            self.string(element.get("alt_text"), f"{pointer}/alt_text", limit=2000, required=True)

    def block(self, block: Any, pointer: str) -> None:
        if not isinstance(block, dict):
            self.fail(pointer, "must be an object")
            return
        kind = block.get("type")
        if kind not in _BLOCK_TYPES:
            self.fail(f"{pointer}/type", "must be a valid block type")
            return
        self.string(block.get("block_id"), f"{pointer}/block_id", limit=255)
        if kind == "section":
            self._section(block, pointer)
        elif kind == "header":
            self.text(block.get("text"), f"{pointer}/text", limit=150, plain_only=True)
        elif kind == "actions":
            self._elements(block.get("elements"), f"{pointer}/elements", limit=25, context=False)
        elif kind == "context":
            self._elements(block.get("elements"), f"{pointer}/elements", limit=10, context=True)
        elif kind == "image":
            self.string(block.get("image_url"), f"{pointer}/image_url", limit=3000)
            self.string(block.get("alt_text"), f"{pointer}/alt_text", limit=2000, required=True)
        elif kind == "input":
            self.text(block.get("label"), f"{pointer}/label", limit=2000, plain_only=True)
            self.element(block.get("element"), f"{pointer}/element")

    def _section(self, block: dict[str, Any], pointer: str) -> None:
        fields = block.get("fields")
        self.text(block.get("text"), f"{pointer}/text", limit=3000, required=fields is None)
        if fields is not None:
            if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                self.fail(f"{pointer}/fields", "must contain 1 to 10 items")
            else:
                for index, item in enumerate(fields):
                    self.text(item, f"{pointer}/fields/{index}", limit=2000)
        accessory = block.get("accessory")
        if accessory is not None:
            self.element(accessory, f"{pointer}/accessory")

    def _elements(self, elements: Any, pointer: str, *, limit: int, context: bool) -> None:
        if not isinstance(elements, list) or not 1 <= len(elements) <= limit:
            self.fail(pointer, f"must contain 1 to {limit} items")
            return
        for index, element in enumerate(elements):
            item_pointer = f"{pointer}/{index}"
            if context and isinstance(element, dict) and element.get("type") in _TEXT_TYPES:
                self.text(element, item_pointer, limit=3000)
            elif context and not (isinstance(element, dict) and element.get("type") == "image"):
                self.fail(item_pointer, "must be a text object or an image element")
            else:
                self.element(element, item_pointer)


def validate_blocks(blocks: Any, *, max_blocks: int = MESSAGE_MAX_BLOCKS) -> list[str]:
    """Slack-style error strings for `blocks`; an empty list means Slack would accept them."""
    checker = _Checker()
    if not isinstance(blocks, list):
        checker.fail("/blocks", "must be an array")
        return checker.errors
    if len(blocks) > max_blocks:
        checker.fail("/blocks", f"must contain at most {max_blocks} items")
    seen_ids: set[str] = set()
    for index, block in enumerate(blocks):
        checker.block(block, f"/blocks/{index}")
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in seen_ids:
                checker.fail(f"/blocks/{index}/block_id", "must be unique")
            seen_ids.add(block_id)
    return checker.errors


def validate_view(view: Any) -> list[str]:
    """Errors for a modal or Home tab view (100 blocks, 24-character titles and buttons)."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.fail("/view", "must be an object")
        return checker.errors
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.fail("/view/type", "must be one of [home modal]")
    if kind == "modal":
        checker.text(view.get("title"), "/view/title", limit=24, plain_only=True)
        for key in ("submit", "close"):
            checker.text(view.get(key), f"/view/{key}", limit=24, plain_only=True, required=False)
    checker.string(view.get("callback_id"), "/view/callback_id", limit=255)
    checker.string(view.get("private_metadata"), "/view/private_metadata", limit=3000)
    checker.errors.extend(
        error.replace("[json-pointer:/blocks", "[json-pointer:/view/blocks")
        for error in validate_blocks(view.get("blocks"), max_blocks=VIEW_MAX_BLOCKS)
    )
    return checker.errors
