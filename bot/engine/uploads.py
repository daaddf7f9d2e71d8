"""Sharing a queued file (an "upload" outbox row) in a DM or channel, exactly once.

slack_sdk's ``files_upload_v2`` makes three calls: ``files.getUploadURLExternal``, a POST of the bytes to
the URL it answers, and ``files.completeUploadExternal``, which shares the file with the row's message
(``blocks``). What is idempotent at Slack decides how a crash is recovered:

* the first two steps create nothing anyone sees: an upload never completed is discarded by Slack, so
  repeating them is harmless;
* the third posts the message. It cannot carry message metadata (the outbox's usual marker), and Slack
  documents no second completion of a file to lean on. But the share is a message in the conversation with
  the file in its ``files``, and the file's name is unique per row (the session and the report kind in
  one DM), so after an interrupted attempt the dispatcher looks for that name in the conversation's
  history, in the attempt's window, before uploading again (``delivery.find_posted`` with ``matches``),
  within the same history budget as posts.

The row's lease is renewed when the upload begins (``UPLOAD_HOLD``) so the three calls finish before any
other replica could claim the row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.outbox import UploadPayload
from bot.engine.locales import is_user_destination
from bot.slackweb.clients import TIMEOUT_SECONDS

UPLOAD_WINDOW = timedelta(seconds=4 * TIMEOUT_SECONDS)
"""How long after `sending_since` the share can land: conversations.open and the three upload calls."""
UPLOAD_HOLD = UPLOAD_WINDOW + timedelta(seconds=30)


def shares(filename: str) -> Callable[[dict[str, Any]], bool]:
    """Whether a message from history is the share of our file (found by its unique name)."""

    def matches(message: dict[str, Any]) -> bool:
        return any(isinstance(f, dict) and f.get("name") == filename for f in message.get("files") or [])

    return matches


async def conversation(client: AsyncWebClient, destination: str) -> str:
    """The conversation id a file is shared in: a user's DM is opened first (files.completeUploadExternal
    takes a conversation id, not a user id)."""
    if not is_user_destination(destination):
        return destination
    opened = await client.conversations_open(users=destination)
    return str(opened["channel"]["id"])


async def share(client: AsyncWebClient, channel: str, payload: UploadPayload) -> None:
    """The three calls, with the row's message as the share's blocks (no `initial_comment`: Slack would
    then ignore the blocks)."""
    await client.files_upload_v2(
        channel=channel,
        content=payload.file.content,
        filename=payload.file.filename,
        title=payload.file.title,
        snippet_type=payload.file.snippet_type,
        blocks=json.dumps(payload.message.blocks),
    )
