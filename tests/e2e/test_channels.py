"""Issue 4 end to end: course subscriptions post one channel alert, edited when the conference ends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import BotProcess, CanvasWorld, SlackWorld, link_in_process, slash, wait_for

pytestmark = pytest.mark.e2e


def channel_posts(slack: SlackWorld, channel: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel=channel) if m["channel"] == channel]


def test_teacher_subscribes_channel_one_post_despite_twenty_students(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess
) -> None:
    teacher = canvas.user("Prof. Curie")
    bio = canvas.course("Biology 101")
    canvas.enroll(bio["id"], teacher["id"], "TeacherEnrollment")
    students = [canvas.user(f"Student {n}") for n in range(20)]
    for student in students:
        canvas.enroll(bio["id"], student["id"])
    slack.user("UTEACH")
    for n in range(20):
        slack.user(f"USTU{n}")
    slack.slack.post(
        "/_sandbox/channels",
        {
            "id": "CBIO",
            "name": "bio",
            "team_id": slack.team_id,
            "creator": "UTEACH",
            "members": ["UTEACH"],
            "bot_member": True,
        },
    )
    slack.slack.post(
        "/_sandbox/channels",
        {
            "id": "CNOBOT",
            "name": "nobot",
            "team_id": slack.team_id,
            "members": ["UTEACH"],
            "bot_member": False,
        },
    )
    link_in_process(
        bot,
        slack.team_id,
        [("UTEACH", teacher["token"])] + [(f"USTU{n}", s["token"]) for n, s in enumerate(students)],
    )
    bot.start()

    refused = slash(bot, slack, "USTU0", "subscribe Biology 101", channel_id="CBIO")
    assert "Only teachers, TAs and designers" in refused["text"] and "student" in refused["text"]
    no_bot = slash(bot, slack, "UTEACH", "subscribe Biology 101", channel_id="CNOBOT")
    assert "not a member of this channel" in no_bot["text"]
    accepted = slash(bot, slack, "UTEACH", f"subscribe {bio['id']}", channel_id="CBIO")
    assert "now gets an alert" in accepted["text"]
    assert "Biology 101" in slash(bot, slack, "UTEACH", "subscriptions", channel_id="CBIO")["text"]

    lecture = canvas.conference(bio["id"], "Cell biology <live>", [s["id"] for s in students])
    canvas.start(lecture["id"])
    wait_for(lambda: len(channel_posts(slack, "CBIO")) == 1, timeout=10, what="the channel alert")
    wait_for(lambda: all(slack.dms_to(f"USTU{n}") for n in range(20)), timeout=15, what="every student's DM")
    post = channel_posts(slack, "CBIO")[0]
    assert "Cell biology &lt;live&gt;" in post["text"]

    canvas.end(lecture["id"])
    wait_for(
        lambda: "Ended" in str(channel_posts(slack, "CBIO")[0]["blocks"]),
        timeout=10,
        what="the channel alert edited to ended",
    )
    assert len(channel_posts(slack, "CBIO")) == 1
    assert [len(slack.dms_to(f"USTU{n}")) for n in range(20)] == [1] * 20

    canvas.canvas.post(
        f"/_sandbox/conferences/{lecture['id']}/recordings",
        {"title": "Cell biology <recording>", "duration_minutes": 42},
    )
    replies = wait_for(
        lambda: [m for m in channel_posts(slack, "CBIO") if m.get("thread_ts") == post["ts"]],
        timeout=15,
        what="the recording-ready reply in the alert's thread",
    )
    assert "Cell biology &lt;recording&gt;" in str(replies[0]["blocks"]) and "42 min" in str(
        replies[0]["blocks"]
    )
    assert "/_sandbox/playback/" in str(replies[0]["blocks"])
    student_replies = wait_for(
        lambda: [m for m in slack.dms_to("USTU3") if m.get("thread_ts")],
        timeout=15,
        what="the recording-ready reply in a student's DM thread",
    )
    assert student_replies[0]["thread_ts"] == slack.dms_to("USTU3")[0]["ts"]
    assert len([m for m in channel_posts(slack, "CBIO") if m.get("thread_ts")]) == 1

    gone = slash(bot, slack, "UTEACH", "unlink", channel_id="CBIO")["text"]
    assert "1 channel subscription you set up was removed" in gone
    nothing = slash(bot, slack, "USTU1", "subscriptions", channel_id="CBIO")["text"]
    assert "follows no course" in nothing
    assert "&lt;course&gt;" in nothing and "<course>" not in nothing, "Slack would read <course> as a link"


def test_muted_course_sends_no_dm(canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess) -> None:
    ada = canvas.user("Ada")
    bio, chem = canvas.course("Biology"), canvas.course("Chemistry")
    canvas.enroll(bio["id"], ada["id"])
    canvas.enroll(chem["id"], ada["id"])
    slack.user("UADA")
    link_in_process(bot, slack.team_id, [("UADA", ada["token"])])
    bot.start()
    assert "Muted *Chemistry*" in slash(bot, slack, "UADA", "mute chem")["text"]
    canvas.start(canvas.conference(chem["id"], "Muted lab", [ada["id"]])["id"])
    canvas.start(canvas.conference(bio["id"], "Heard lecture", [ada["id"]])["id"])
    wait_for(lambda: slack.dms_to("UADA"), timeout=10, what="the unmuted course's DM")
    texts = [m["text"] for m in slack.dms_to("UADA")]
    assert any("Heard lecture" in t for t in texts) and not any("Muted lab" in t for t in texts)
