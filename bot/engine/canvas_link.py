"""Browser side of Canvas OAuth linking: /canvas/oauth/start and /canvas/oauth/callback.

Start checks the signed state and sends the browser to Canvas; the callback consumes the state once,
exchanges the code, stores the tokens encrypted, and DMs the user who clicked the button.

The result page is in the Slack user's language once the signed state says who they are (Locales), and in
the browser's (``Accept-Language``) before that: a forged or expired link names nobody.
"""

from __future__ import annotations

import hmac
import html
import logging
from collections.abc import Sequence

from sqlalchemy import delete, update
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError, InsufficientScope
from bot.canvas.oauth import CALLBACK_PATH, CanvasOAuth, authorize_url
from bot.engine.linking import link_with_token
from bot.engine.locales import Locales
from bot.engine.oauth_state import STATE_TTL, StateError, StateSigner
from bot.messages import blocks
from bot.messages.i18n import Translator, accept_language, translator
from bot.messages.mrkdwn import escape
from bot.ops.scope_alarm import MissingScopeAlarm
from bot.slackweb.clients import TeamClients
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory
from bot.store.models import OAuthState, utcnow

log = logging.getLogger(__name__)

START_PATH = "/canvas/oauth/start"
BROWSER_COOKIE = "confbot_canvas_link"
"""Holds the browser nonce of the bound state (see bot.engine.oauth_state): HttpOnly, SameSite=Lax (sent on
Canvas's top-level redirect back to us), scoped to /canvas/oauth, and no longer-lived than the state."""
COOKIE_PATH = "/canvas/oauth"


def _page(t: Translator, title: str, message: str, status: int = 200) -> HTMLResponse:
    """The whole result page; ``title`` and ``message`` are already in the reader's language."""
    lang = t.locale.replace("_", "-")
    body = (
        f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'><title>confbot</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status)


def _not_configured_page(t: Translator) -> HTMLResponse:
    """Canvas refused a scope of the developer key: the reader can do nothing but wait, so say so."""
    return _page(
        t,
        t._("Canvas is not set up for confbot yet"),
        t._(
            "Canvas's developer key for confbot does not allow everything confbot needs to read, so nothing "
            "was linked. Nothing is wrong with your account: the bot's operator has been told, and your "
            "Canvas administrator can fix it. Try /conferences link again once they have."
        ),
        502,
    )


class CanvasLinkFlow:
    """Issues personal "Connect Canvas" links and completes them when Canvas sends the browser back."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        canvas: CanvasClient,
        cipher: TokenCipher,
        oauth: CanvasOAuth | None,
        slack: TeamClients,
        signer: StateSigner,
        canvas_root: str,
        public_root: str,
        locales: Locales | None = None,
        scopes: Sequence[str] = (),
        scope_alarm: MissingScopeAlarm | None = None,
    ) -> None:
        """`scopes` go into the authorize request (empty: none named, CANVAS_SCOPES=off); `scope_alarm`
        hears Canvas refusing them, so a misconfigured key reaches the operator, not a relink prompt;
        `locales` picks the Slack user's language for the result page (None: the browser's)."""
        self._sessions = sessions
        self._locales = locales
        self._canvas = canvas
        self._cipher = cipher
        self._oauth = oauth
        self._slack = slack
        self._signer = signer
        self._canvas_root = canvas_root
        self._public_root = public_root
        self._scopes = tuple(scopes)
        self._scope_alarm = scope_alarm

    @property
    def enabled(self) -> bool:
        return self._oauth is not None

    @property
    def redirect_uri(self) -> str:
        return self._public_root + CALLBACK_PATH

    async def start_url(self, team_id: str, slack_user_id: str) -> str | None:
        """A personal, expiring "Connect Canvas" link for one Slack user (None without a developer key)."""
        if not self.enabled:
            return None
        now = utcnow()
        state, claims = self._signer.issue(team_id, slack_user_id, now)
        async with self._sessions.begin() as session:
            await session.execute(delete(OAuthState).where(OAuthState.expires_at < now))  # keep it small
            session.add(
                OAuthState(
                    nonce=claims.nonce,
                    team_id=team_id,
                    slack_user_id=slack_user_id,
                    expires_at=claims.expires_at,
                )
            )
        return f"{self._public_root}{START_PATH}?state={state}"

    async def _reader(
        self, request: Request, team_id: str | None = None, user_id: str | None = None
    ) -> Translator:
        """The Slack user's language when the state names them, else the browser's."""
        if team_id and user_id and self._locales is not None:
            return await self._locales.for_user(team_id, user_id)
        return translator(accept_language(request.headers.get("accept-language")))

    async def start(self, request: Request) -> Response:
        state = request.query_params.get("state", "")
        if self._oauth is None:
            t = await self._reader(request)
            return _page(
                t, t._("Canvas linking is off"), t._("This bot links Canvas with access tokens only."), 404
            )
        try:
            claims = self._signer.verify(state, utcnow())
        except StateError as error:
            t = await self._reader(request)
            return _page(t, t._("Link not valid"), t.text(str(error)), 400)
        bound_state, browser = self._signer.bind(claims)
        target = authorize_url(
            self._canvas_root, self._oauth.client_id, self.redirect_uri, bound_state, self._scopes
        )
        response = RedirectResponse(target, status_code=302)
        response.set_cookie(
            BROWSER_COOKIE,
            browser,
            max_age=int(STATE_TTL.total_seconds()),
            path=COOKIE_PATH,
            secure=self._public_root.startswith("https://"),
            httponly=True,
            samesite="lax",
        )
        return response

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        if self._oauth is None:
            t = await self._reader(request)
            return _page(
                t, t._("Canvas linking is off"), t._("This bot links Canvas with access tokens only."), 404
            )
        if params.get("error") == "invalid_scope":
            # Canvas appends no state to this error, and it is no one's doing but the key's configuration;
            # with no state naming the Slack user, the page is in the browser's language.
            if self._scope_alarm is not None:
                self._scope_alarm.refused_authorization(params.get("error_description", ""), self._scopes)
            return _not_configured_page(await self._reader(request))
        if params.get("error"):
            t = await self._reader(request)
            return _page(
                t,
                t._("Canvas was not linked"),
                t._("Canvas said the request was denied. You can try again."),
                400,
            )
        try:
            claims = self._signer.verify(params.get("state", ""), utcnow())
        except StateError as error:
            t = await self._reader(request)
            return _page(t, t._("Link not valid"), t.text(str(error)), 400)
        cookie = request.cookies.get(BROWSER_COOKIE, "")
        if claims.browser is None or not hmac.compare_digest(cookie.encode(), claims.browser.encode()):
            # Not the Slack user's browser: its own language, not theirs.
            t = await self._reader(request)
            return _page(
                t,
                t._("Open the link in your own browser"),
                t._(
                    "This Canvas link was started in another browser, so nothing was linked. "
                    "Run /conferences link in Slack and open the Connect button yourself."
                ),
                403,
            )
        t = await self._reader(request, claims.team_id, claims.slack_user_id)
        if not await self._consume(claims.nonce, claims.team_id, claims.slack_user_id):
            return _page(
                t,
                t._("Link already used"),
                t._("This link was used already. Run /conferences link again."),
                400,
            )
        try:
            grant = await self._oauth.exchange_code(params.get("code", ""), self.redirect_uri)
            who = await link_with_token(
                self._sessions,
                self._canvas,
                self._cipher,
                team_id=claims.team_id,
                slack_user_id=claims.slack_user_id,
                token=grant.access_token.get_secret_value(),
                token_kind="oauth",
                refresh_token=grant.refresh_token.get_secret_value() if grant.refresh_token else None,
                expires_in=grant.expires_in,
                canvas_user=grant.user,
            )
        except InsufficientScope:
            return _not_configured_page(t)  # the client's hook has told the operator which scope
        except CanvasError as error:
            log.warning("Canvas OAuth callback failed: %s", type(error).__name__)
            return _page(
                t,
                t._("Canvas was not linked"),
                t._("Canvas did not accept the request. Please try again."),
                502,
            )
        await self._confirm(claims.team_id, claims.slack_user_id, who.name, t)
        return _page(
            t,
            t._("Canvas linked"),
            t._("Linked as %(name)s. You can close this tab and go back to Slack.", name=who.name),
        )

    async def _consume(self, nonce: str, team_id: str, slack_user_id: str) -> bool:
        """Mark the nonce used; False when it is unknown, already used, or for another user."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(OAuthState)
                .where(
                    OAuthState.nonce == nonce,
                    OAuthState.team_id == team_id,
                    OAuthState.slack_user_id == slack_user_id,
                    OAuthState.used_at.is_(None),
                )
                .values(used_at=utcnow())
            )
        return bool(getattr(result, "rowcount", 0))

    async def _confirm(self, team_id: str, slack_user_id: str, canvas_name: str, t: Translator) -> None:
        client = await self._slack.for_team(team_id)
        if client is None:
            return
        message = blocks.linked_confirmation(escape(canvas_name), t=t)
        try:
            await client.chat_postMessage(channel=slack_user_id, **message)
        except Exception as error:  # the link itself succeeded; a failed confirmation must not undo it
            log.warning("could not DM the link confirmation: %s", type(error).__name__)
