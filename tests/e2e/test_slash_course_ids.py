"""Issue 9 item 10: `/conferences course ²` or a 5,000-digit id gets a clear ephemeral reply, not a crash."""

from __future__ import annotations

import pytest

from tests.support import BotProcess, CanvasWorld, SlackWorld, link_in_process, slash

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("argument", ["²", "9" * 5000])
def test_slash_course_with_a_malformed_id_gets_a_clear_reply(
    bot: BotProcess, canvas: CanvasWorld, slack: SlackWorld, argument: str
) -> None:
    ada = canvas.user("Ada Lovelace")
    slack.user("UADA")
    link_in_process(bot, slack.team_id, [("UADA", ada["token"])])  # linked: the id reaches the lookup
    bot.start()
    reply = slash(bot, slack, "UADA", f"course {argument}")
    assert reply.get("response_type", "ephemeral") == "ephemeral"
    assert "not a Canvas course id" in str(reply)
    assert "Traceback" not in bot.logs()
