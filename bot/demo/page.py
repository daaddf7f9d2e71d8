"""The demo page: a small control room over the sandboxes, and Slack as the sandbox Slack received it.

Routes: `/` (the whole page), `/feed` and `/conferences` (fragments the page's script polls),
`/messages.json` (raw), `/static/*` (CSS, script), and `POST /control/{action}` for the control room's
forms. The controls run server side through `ControlRoom`, so the browser holds no token and no signing
secret. Each form carries a per-run token, so another site open in the same browser cannot post to them;
only loopback host names are served, so a rebound DNS name cannot read the page either.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.demo.controls import ConferenceRow, ControlRoom, Reply
from bot.demo.render import feed_view, render
from bot.demo.world import CHANNEL_NAME, COURSE_NAME, JSON, PEOPLE, TEACHER, DemoError

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_MAX_FORM_BYTES = 16 * 1024
_SUBTITLE = "Messages the bot sent, as the sandbox Slack received them; refreshes live."


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def _conference_id(form: Mapping[str, str]) -> int:
    try:
        return int(form.get("conference", ""))
    except ValueError:
        raise DemoError("which conference?") from None


async def perform(controls: ControlRoom, action: str, form: Mapping[str, str]) -> str:
    """Run one control-room form; the note it returns is shown on the page."""
    if action == "create":
        if form.get("when") == "later":
            return await controls.schedule(form.get("title", ""))
        conference_id = await controls.create(form.get("title", ""))
        await controls.act(conference_id, "start")
        return "Created and started in Canvas; the bot sees it at its next poll."
    if action == "conference":
        return await controls.act(_conference_id(form), form.get("do", ""))
    if action == "slash":
        reply = await controls.slash(
            form.get("user", ""), form.get("text", ""), in_channel=form.get("where") == "channel"
        )
        return f"The bot answered {reply.command}."
    if action == "subscribe":
        await controls.subscribe_channel()
        return "The bot answered the subscribe command."
    if action == "digest":
        return await controls.digest_now()
    if action == "home":
        return await controls.open_home(form.get("user", ""))
    raise DemoError(f"unknown control {action!r}")


def create_page_app(
    slack_url: str,
    *,
    names: Mapping[str, str] | None = None,
    replies: Sequence[Reply] | None = None,
    controls: ControlRoom | None = None,
) -> Starlette:
    """The page over the sandbox Slack at `slack_url`; with `controls`, the control room too.

    Without controls it only watches: `names` maps Slack user ids to display names and `replies` (which
    may grow while the app runs) are slash-command replies to show. With controls both come from them.
    """
    shown_names: Mapping[str, str] = controls.world.names if controls else (names or {})
    shown_replies: Sequence[Reply] = controls.replies if controls else (replies or [])
    channel_names: Mapping[str, str] = controls.world.channel_names if controls else {}
    csrf = secrets.token_urlsafe(24)

    async def messages() -> list[JSON]:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{slack_url}/_sandbox/messages")
            response.raise_for_status()
            return list(response.json()["messages"])

    async def feed_context() -> dict[str, Any]:
        try:
            homes = await controls.homes() if controls else []
            return feed_view(
                await messages(), shown_replies, shown_names, homes=homes, channel_names=channel_names
            )
        except httpx.HTTPError:
            return feed_view([], [], shown_names, error="The sandbox Slack is not answering.")

    async def conference_rows() -> list[ConferenceRow]:
        if controls is None:
            return []
        try:
            return await controls.conferences()
        except httpx.HTTPError:
            return []

    async def conferences_fragment() -> str:
        return render("_conferences.html", conferences=await conference_rows(), csrf=csrf)

    async def index(_request: Request) -> Response:
        page = render(
            "page.html",
            subtitle=_SUBTITLE,
            controls=controls is not None,
            conferences=await conference_rows(),
            csrf=csrf,
            people=PEOPLE,
            teacher=TEACHER.name,
            course_name=COURSE_NAME,
            course_id=controls.world.course_id if controls else 0,
            channel_name=CHANNEL_NAME,
            **await feed_context(),
        )
        return HTMLResponse(page)

    async def feed(_request: Request) -> Response:
        return HTMLResponse(render("_feed.html", **await feed_context()))

    async def conferences(_request: Request) -> Response:
        return HTMLResponse(await conferences_fragment())

    async def raw(_request: Request) -> Response:
        return JSONResponse({"messages": await messages()})

    async def control(request: Request) -> Response:
        if controls is None:
            return JSONResponse({"ok": False, "note": "this page only watches"}, status_code=404)
        form = await _form(request)
        if form is None:
            return JSONResponse({"ok": False, "note": "form too large"}, status_code=413)
        if not secrets.compare_digest(form.get("csrf", ""), csrf):
            return JSONResponse({"ok": False, "note": "stale page: reload it"}, status_code=403)
        ok, note = await _attempt(lambda: perform(controls, request.path_params["action"], form))
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"ok": ok, "note": note}, status_code=200 if ok else 400)
        return RedirectResponse("/", status_code=303)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/feed", feed),
            Route("/conferences", conferences),
            Route("/messages.json", raw),
            Route("/control/{action}", control, methods=["POST"]),
            Mount("/static", StaticFiles(packages=[("bot.demo", "static")]), name="static"),
        ],
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]"]),
            Middleware(_SecurityHeaders),
        ],
    )


async def _form(request: Request) -> dict[str, str] | None:
    """An urlencoded form (the page's forms and its script both send one); None when oversized."""
    if int(request.headers.get("content-length") or 0) > _MAX_FORM_BYTES:
        return None
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return None
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in fields.items()}


async def _attempt(action: Callable[[], Awaitable[str]]) -> tuple[bool, str]:
    """(ok, note): a DemoError or an unreachable sandbox is a note for the page, not a 500."""
    try:
        return True, await action()
    except DemoError as error:
        return False, str(error)
    except httpx.HTTPError:
        return False, "A sandbox or the bot is not answering."
