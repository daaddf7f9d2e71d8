"""Canvas OAuth2 (developer key) linking: authorize URL, code exchange, refresh, revoke.

Refresh tokens do not rotate in Canvas: a refresh answer carries a new access token and no
refresh token. `CanvasOAuth.refresh` therefore returns a grant whose `refresh_token` is the
one passed in, so callers may store the grant as-is; keeping the old one is equally right.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Self
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr, ValidationError

from bot.canvas.errors import CanvasError, Endpoint, Transient, error_for_answer, strip_json_prefix
from bot.domain.models import TokenGrant

logger = logging.getLogger(__name__)

TOKEN_PATH = "/login/oauth2/token"
AUTHORIZE_PATH = "/login/oauth2/auth"
CALLBACK_PATH = "/canvas/oauth/callback"
"""Where Canvas sends the browser back, under PUBLIC_BASE_URL: the developer key's Redirect URI."""


def authorize_url(
    canvas_root: str, client_id: str, redirect_uri: str, state: str, scopes: Sequence[str] = ()
) -> str:
    """Where to send the user's browser to approve linking; Canvas redirects back with `code`.

    `scopes` (e.g. `url:GET|/api/v1/conferences`, see bot/canvas/scopes.py) go in one space-separated
    `scope` parameter. A developer key with Enforce Scopes requires them (and sends the browser back with
    `error=invalid_scope` when one is not on the key); a key without it ignores them.
    """
    query = {"client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri, "state": state}
    if scopes:
        query["scope"] = " ".join(scopes)
    return f"{canvas_root.rstrip('/')}{AUTHORIZE_PATH}?{urlencode(query)}"


class CanvasOAuth:
    """Talks to `/login/oauth2/token` with one developer key's credentials."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str | SecretStr,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def __repr__(self) -> str:
        return f"CanvasOAuth(base_url={self.base_url!r}, client_id={self.client_id!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool, but only if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    async def exchange_code(self, code: str, redirect_uri: str) -> TokenGrant:
        """Trade the one-time `code` (valid 10 minutes) for tokens; a reused code is invalid_grant."""
        return await self._token(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )

    async def refresh(self, refresh_token: str) -> TokenGrant:
        """A fresh access token. Canvas sends no new refresh token, so the old one is carried over."""
        grant = await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})
        if grant.refresh_token is None:
            grant = grant.model_copy(update={"refresh_token": SecretStr(refresh_token)})
        return grant

    async def revoke(self, access_token: str) -> None:
        """Log the token out of Canvas. A token Canvas already rejects (401) counts as revoked."""
        response = await self._send(
            "DELETE", headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        )
        if response.is_success or response.status_code == 401:
            return
        raise self._error(response)

    async def _token(self, form: dict[str, str]) -> TokenGrant:
        data = {**form, "client_id": self.client_id, "client_secret": self._client_secret.get_secret_value()}
        response = await self._send("POST", data=data, headers={"Accept": "application/json"})
        if not response.is_success:
            raise self._error(response)
        try:
            return TokenGrant.model_validate_json(strip_json_prefix(response.content))
        except ValidationError:
            raise Transient(
                f"POST {TOKEN_PATH}: unparseable token response", status=response.status_code
            ) from None

    async def _send(
        self, method: str, *, headers: dict[str, str], data: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method, self.base_url + TOKEN_PATH, data=data, headers=headers, follow_redirects=False
            )
        except httpx.TimeoutException:
            raise Transient(f"{method} {TOKEN_PATH}: timed out") from None
        except httpx.RequestError as exc:
            raise Transient(f"{method} {TOKEN_PATH}: {type(exc).__name__}: {exc}") from None
        logger.debug("%s %s -> %s", method, TOKEN_PATH, response.status_code)
        return response

    @staticmethod
    def _error(response: httpx.Response) -> CanvasError:
        """Classify a failed token-endpoint answer by what the caller should do next.

        Only a JSON OAuth2 error body is an `OAuthError` (whose `dead_grant` then says whether the
        link is over). Canvas' throttle (429, or 403 text/plain "Rate Limit Exceeded") is `Throttled`;
        anything else without an OAuth2 body (5xx, redirects, HTML pages from a proxy or load
        balancer, whatever the status) is `Transient`: it says nothing about the grant. The rules
        live in `error_for_answer`, the one mapping the API client uses too.
        """
        what = f"{response.request.method} {TOKEN_PATH}"
        return error_for_answer(
            response.status_code, response.headers, response.content, what, Endpoint.TOKEN
        )
