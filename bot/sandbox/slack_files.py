"""File uploads as Slack does them since files.upload was retired: three steps, all recorded.

1. ``files.getUploadURLExternal`` (``filename``, ``length``) answers a file id and an upload URL;
2. the bytes are POSTed to that URL (no token: the URL is the credential, as Slack's pre-signed ones);
3. ``files.completeUploadExternal`` (``files=[{"id", "title"}]``, optional ``channel_id``, ``thread_ts``,
   ``initial_comment`` or ``blocks``) finishes it: with a channel the file is shared there in a new message
   (``initial_comment`` as its text; ``blocks`` used only without ``initial_comment``, as Slack documents),
   without one it stays private to the app.

``channel_id`` must be a conversation id: a user id is refused (``channel_not_found``), so a bot must open
the DM first (``conversations.open``). A file is completed once; completing it again is refused
(``file_not_found``: Slack documents no second completion, and a bot must never rely on one). Tests read
every upload, its bytes and where it was shared, at ``GET /_sandbox/files``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.sandbox.slack_api import ApiError, Caller, _content, _team_channel
from bot.sandbox.slack_state import JSON, Message, SlackState, UploadedFile, random_id

MAX_FILE_BYTES = 1024 * 1024 * 1024  # Slack's 1 GB


def get_upload_url(state: SlackState, caller: Caller, args: JSON) -> JSON:
    filename = str(args.get("filename") or "")
    try:
        length = int(args.get("length") or 0)
    except (TypeError, ValueError):
        length = 0
    if not filename or not 0 < length <= MAX_FILE_BYTES:
        raise ApiError("invalid_arguments")
    upload = UploadedFile(
        id=random_id("F"),
        team_id=caller.team.team_id,
        filename=filename,
        length=length,
        snippet_type=str(args["snippet_type"]) if args.get("snippet_type") else None,
        created=state.clock(),
    )
    state.files[upload.id] = upload
    return {"file_id": upload.id, "upload_url": f"{state.base_url}/_upload/{upload.id}"}


def _file_list(raw: Any) -> list[JSON]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ApiError("invalid_arguments") from exc
    if not isinstance(raw, list) or not raw or not all(isinstance(f, dict) and f.get("id") for f in raw):
        raise ApiError("invalid_arguments")
    return raw


def complete_upload(state: SlackState, caller: Caller, args: JSON) -> JSON:
    wanted = _file_list(args.get("files"))
    uploads: list[tuple[UploadedFile, str | None]] = []
    for item in wanted:
        upload = state.files.get(str(item["id"]))
        if upload is None or upload.team_id != caller.team.team_id or upload.completed:
            raise ApiError("file_not_found")
        if upload.content is None or len(upload.content) != upload.length:
            raise ApiError("file_upload_size_mismatch" if upload.content is not None else "file_not_found")
        uploads.append((upload, str(item["title"]) if item.get("title") else None))
    channel_id = args.get("channel_id")
    message: Message | None = None
    if channel_id:
        channel = _team_channel(state, caller, channel_id)  # a user id is not a conversation: refused
        if channel.im_user is None and caller.team.bot_user_id not in channel.members:
            raise ApiError("not_in_channel")
        comment = str(args["initial_comment"]) if args.get("initial_comment") else None
        _, blocks = _content(args, required=False)
        message = Message(
            channel=channel.id,
            ts=state.next_ts(),
            team_id=caller.team.team_id,
            text=comment or "",
            blocks=None if comment else blocks,
            thread_ts=str(args["thread_ts"]) if args.get("thread_ts") else None,
            user=channel.im_user,
            bot_user_id=caller.team.bot_user_id,
        )
    for upload, title in uploads:
        upload.completed, upload.title = True, title or upload.filename
        if message is not None:
            upload.channel, upload.ts, upload.thread_ts = message.channel, message.ts, message.thread_ts
    if message is not None:
        message.files = [upload.to_json() for upload, _ in uploads]
        state.messages[(message.channel, message.ts)] = message
    return {"files": [{"id": upload.id, "title": upload.title} for upload, _ in uploads]}


FILE_METHODS = {
    "files.getUploadURLExternal": get_upload_url,
    "files.completeUploadExternal": complete_upload,
}


async def receive_upload(request: Request) -> Response:
    """The upload URL: keeps the bytes of a file that has not been completed yet."""
    state: SlackState = request.app.state.slack
    upload = state.files.get(request.path_params["file_id"])
    if upload is None or upload.completed:
        return PlainTextResponse("Not Found", status_code=404)
    upload.content = await request.body()
    return PlainTextResponse(f"OK - {len(upload.content)}")


async def list_files(request: Request) -> Response:
    """Every upload with its bytes (as text), whether it was completed and where it was shared."""
    state: SlackState = request.app.state.slack
    channel = request.query_params.get("channel")
    files = [
        {
            **upload.to_json(),
            "team_id": upload.team_id,
            "completed": upload.completed,
            "channel": upload.channel,
            "ts": upload.ts,
            "thread_ts": upload.thread_ts,
            "content": (upload.content or b"").decode("utf-8", "replace"),
        }
        for upload in state.files.values()
        if channel is None or upload.channel == channel
    ]
    return JSONResponse({"files": files})


FILE_ROUTES = [
    Route("/_upload/{file_id}", receive_upload, methods=["POST"]),
    Route("/_sandbox/files", list_files, methods=["GET"]),
]
