"""The bot's Slack clients against the sandbox through the fault proxy: one shared session, no repeat
of a call whose connection broke, a 429 waited out only by interactive clients."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError

from bot.slackweb.clients import SlackHttp
from tests.faults import Fault, FaultProxy
from tests.support import SlackWorld


async def test_a_reset_after_slack_accepted_is_not_repeated_by_any_client(
    slack: SlackWorld, slack_faults: FaultProxy
) -> None:
    slack.user("UADA")
    http = SlackHttp(slack_faults.url + "/api/")
    try:
        for client in (http.client(slack.bot_token, outbox=True), http.client(slack.bot_token)):
            with slack_faults.active(Fault("reset", path="chat.postMessage", times=1)):
                with pytest.raises(aiohttp.ClientError):
                    await client.chat_postMessage(channel="UADA", text="once")
        assert slack_faults.count("reset") == 2
        assert len(slack.dms_to("UADA")) == 2, "one message per call: none was sent twice"
    finally:
        await http.aclose()


async def test_only_interactive_clients_wait_out_a_429(slack: SlackWorld, slack_faults: FaultProxy) -> None:
    slack.user("UADA")
    http = SlackHttp(slack_faults.url + "/api/")
    throttle = Fault("respond", path="users.info", status=429, headers={"Retry-After": "0"}, body=b"{}")
    try:
        with slack_faults.active(throttle):
            throttle.times = 1
            assert (await http.client(slack.bot_token).users_info(user="UADA"))["ok"]
            throttle.times, throttle.applied = 1, 0
            with pytest.raises(SlackApiError) as refused:
                await http.client(slack.bot_token, outbox=True).users_info(user="UADA")
        assert refused.value.response.status_code == 429, "the outbox sees the 429 and schedules itself"
    finally:
        await http.aclose()


async def test_every_client_shares_one_session_until_closed(slack: SlackWorld) -> None:
    slack.user("UADA")
    http = SlackHttp(slack.slack.url + "/api/")
    outbox, interactive = http.client(slack.bot_token, outbox=True), http.client(slack.bot_token)
    await outbox.auth_test()
    await interactive.auth_test()
    session = http.session()
    assert outbox.session is session and interactive.session is session
    await http.aclose()
    assert session.closed
