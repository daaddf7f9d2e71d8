"""Helpers for Live Events tests: a recording receiver, a sandbox Canvas with a course and a conference."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.sandbox.canvas import create_canvas_app
from bot.sandbox.canvas_live_events import LiveEventsEmitter
from bot.sandbox.server import RunningServer, start_in_thread


@dataclass
class Received:
    body: bytes
    content_type: str
    at: float


@dataclass
class RecordingReceiver:
    """An HTTPS endpoint stand-in: records each POST and answers the next status in `answers` (then 200)."""

    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    delay_seconds: float = 0.0
    url: str = ""
    """Where it listens (`/hook` on a loopback server), once started."""

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(Received(body, request.headers.get("content-type", ""), time.monotonic()))
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)  # a slow receiver, the fault under test
        return Response(status_code=self.answers.pop(0) if self.answers else 200)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])


@dataclass
class CanvasWithConference:
    """A running sandbox Canvas (its app kept, for its key ring) with a course, two students, one
    conference inviting both."""

    server: RunningServer
    emitter: LiveEventsEmitter
    course_id: int
    user_ids: list[int]
    conference_id: int

    @property
    def url(self) -> str:
        return self.server.url

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.post(self.url + path, json=body or {}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def subscribe(self, url: str | None, **options: Any) -> Any:
        return self.post("/_sandbox/live_events", {"url": url, **options})

    def join(self, conference_id: int | None = None, user_ids: list[int] | None = None) -> Any:
        body = {} if user_ids is None else {"user_ids": user_ids}
        return self.post(f"/_sandbox/conferences/{conference_id or self.conference_id}/start", body)

    def new_conference(self, title: str) -> int:
        made = self.post(
            "/_sandbox/conferences",
            {
                "context_type": "Course",
                "context_id": self.course_id,
                "title": title,
                "user_ids": self.user_ids,
            },
        )
        conference_id: int = made["id"]
        return conference_id

    def report(self) -> dict[str, Any]:
        response = httpx.get(self.url + "/_sandbox/live_events/deliveries", timeout=10)
        report: dict[str, Any] = response.json()
        return report

    def settled(self, attempts: int) -> dict[str, Any] | None:
        """The deliveries report once `attempts` attempts were made and nothing is pending, else None."""
        report = self.report()
        return report if report["pending"] == 0 and len(report["deliveries"]) >= attempts else None


def start_canvas_with_conference() -> CanvasWithConference:
    app = create_canvas_app()
    server = start_in_thread(app)
    world = CanvasWithConference(server, app.state.live_events, 0, [], 0)
    world.course_id = world.post("/_sandbox/courses", {"name": "Biology 101"})["id"]
    for name in ("Ada", "Grace"):
        user_id = world.post("/_sandbox/users", {"name": name})["id"]
        enrollment = {"user_id": user_id, "type": "StudentEnrollment"}
        world.post(f"/_sandbox/courses/{world.course_id}/enrollments", enrollment)
        world.user_ids.append(user_id)
    world.conference_id = world.new_conference("Office hours")
    return world
