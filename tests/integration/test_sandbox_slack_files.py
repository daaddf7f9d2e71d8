"""The sandbox Slack takes slack_sdk's files_upload_v2 (three steps) and records the file for tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.server import serving
from bot.sandbox.slack import SlackState, create_slack_app

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*3 of 5* attended"}}]


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[str, str]]:
    with serving(create_slack_app(SlackState())) as url:
        async with httpx.AsyncClient(base_url=url) as control:
            team = (await control.post("/_sandbox/teams", json={"team_id": "T1"})).json()
            await control.post("/_sandbox/users", json={"id": "U1", "team_id": "T1", "name": "ada"})
            yield url, team["bot_token"]


def _client(url: str, token: str) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=f"{url}/api/")


async def _get(url: str, path: str, key: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url) as control:
        return list((await control.get(path)).json()[key])


async def _files(url: str) -> list[dict[str, Any]]:
    return await _get(url, "/_sandbox/files", "files")


async def _messages(url: str) -> list[dict[str, Any]]:
    return await _get(url, "/_sandbox/messages", "messages")


async def test_files_upload_v2_shares_the_csv_in_the_dm_with_its_blocks(sandbox: tuple[str, str]) -> None:
    url, token = sandbox
    client = _client(url, token)
    dm = (await client.conversations_open(users="U1"))["channel"]["id"]
    csv = "id,name,attended\n1,Ada,yes\n2,\u00c9mile,no\n"
    done = await client.files_upload_v2(
        channel=dm,
        content=csv,
        filename="attendance.csv",
        title="Attendance",
        snippet_type="csv",
        blocks=json.dumps(BLOCKS),
    )
    assert done["file"]["title"] == "Attendance"
    [upload] = await _files(url)
    assert upload["content"] == csv and upload["size"] == len(csv.encode())
    assert (upload["channel"], upload["completed"], upload["name"]) == (dm, True, "attendance.csv")
    methods = [c["method"] for c in await _get(url, "/_sandbox/calls", "calls")]
    assert methods[-2:] == ["files.getUploadURLExternal", "files.completeUploadExternal"]

    [message] = [m for m in await _messages(url) if m["channel"] == dm]
    assert message["blocks"] == BLOCKS and message["files"][0]["id"] == upload["id"]
    history = await client.conversations_history(channel=dm)
    assert history["messages"][0]["files"][0]["name"] == "attendance.csv", "a share is found in history"


async def test_initial_comment_wins_over_blocks_and_no_channel_keeps_it_private(
    sandbox: tuple[str, str],
) -> None:
    url, token = sandbox
    client = _client(url, token)
    dm = (await client.conversations_open(users="U1"))["channel"]["id"]
    await client.files_upload_v2(
        channel=dm, content="a", filename="a.txt", initial_comment="hello", blocks=json.dumps(BLOCKS)
    )
    [message] = await _messages(url)
    assert (message["text"], message["blocks"]) == ("hello", None)
    await client.files_upload_v2(content="b", filename="b.txt")
    private = [f for f in await _files(url) if f["name"] == "b.txt"]
    assert private[0]["completed"] and private[0]["channel"] is None
    assert len(await _messages(url)) == 1


async def test_a_user_id_is_not_a_channel_and_a_file_completes_once(sandbox: tuple[str, str]) -> None:
    url, token = sandbox
    client = _client(url, token)
    with pytest.raises(SlackApiError) as refused:
        await client.files_upload_v2(channel="U1", content="x", filename="x.txt")
    assert refused.value.response["error"] == "channel_not_found"
    step = await client.files_getUploadURLExternal(filename="y.txt", length=1)
    async with httpx.AsyncClient() as uploader:
        assert (await uploader.post(step["upload_url"], content=b"y")).status_code == 200
    files = [{"id": step["file_id"], "title": "y"}]
    await client.files_completeUploadExternal(files=files)
    with pytest.raises(SlackApiError) as again:
        await client.files_completeUploadExternal(files=files)
    assert again.value.response["error"] == "file_not_found"
    with pytest.raises(SlackApiError) as bad:
        await client.files_getUploadURLExternal(filename="", length=0)
    assert bad.value.response["error"] == "invalid_arguments"
