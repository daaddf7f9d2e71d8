"""Socket Mode for the sandbox Slack: app-level tokens, the WebSocket, envelopes and their acks.

Real Slack hands `apps.connections.open` a one-time `wss://.../link/?ticket=...` URL, greets each new
socket with `hello`, pushes envelopes (`slash_commands`, `interactive`, `events_api`) that the app must
ack with `{"envelope_id": ...}` within 3 seconds, and asks clients to reconnect with a `disconnect`
message.  The sandbox does the same over plain `ws://` on loopback, so a Bolt app in Socket Mode can be
driven end to end: tests push an envelope through the control API and get the app's ack back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

JSON = dict[str, Any]

APP_ID = "A0SANDBOX1"
SOCKET_PATH = "/link/"
ACK_TIMEOUT_SECONDS = 3.0
TICKET_LIFETIME_SECONDS = 30.0
ENVELOPE_TYPES = ("slash_commands", "interactive", "events_api")


class SocketError(Exception):
    """A control call that cannot be served; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Connection:
    id: int
    websocket: WebSocket


@dataclass
class SocketHub:
    """App-level tokens, live sockets and envelopes awaiting an ack.

    Only touched from the sandbox server's event loop; futures are created there too (lazily), so the
    hub itself can be built before that loop exists.
    """

    app_tokens: set[str] = field(default_factory=set)
    tickets: dict[str, float] = field(default_factory=dict)
    connections: dict[int, Connection] = field(default_factory=dict)
    pending: dict[str, asyncio.Future[JSON]] = field(default_factory=dict)
    acks: list[JSON] = field(default_factory=list)
    opened: int = 0
    ack_timeout: float = ACK_TIMEOUT_SECONDS

    def add_app_token(self, token: str | None = None) -> str:
        token = token or f"xapp-1-{APP_ID}-{secrets.randbelow(10**13)}-{secrets.token_hex(32)}"
        if not token.startswith("xapp-"):
            raise SocketError("an app-level token starts with xapp-")
        self.app_tokens.add(token)
        return token

    def issue_ticket(self, now: float) -> str:
        ticket = str(uuid.uuid4())
        self.tickets[ticket] = now
        return ticket

    def redeem(self, ticket: str | None, now: float) -> bool:
        """A ticket opens one socket, once, shortly after it was issued (like Slack's)."""
        issued = self.tickets.pop(ticket or "", None)
        return issued is not None and now - issued <= TICKET_LIFETIME_SECONDS

    def envelope(self, kind: str, payload: JSON) -> JSON:
        if kind not in ENVELOPE_TYPES:
            raise SocketError(f"type must be one of {', '.join(ENVELOPE_TYPES)}")
        data: JSON = {
            "envelope_id": str(uuid.uuid4()),
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
        }
        if kind == "events_api":
            data.update(retry_attempt=0, retry_reason="")
        return data

    async def send(self, kind: str, payload: JSON) -> JSON:
        """Push one envelope to the newest socket and wait for the app's ack (Slack's 3-second rule)."""
        if not self.connections:
            raise SocketError("no Socket Mode client is connected", status=409)
        envelope = self.envelope(kind, payload)
        connection = self.connections[max(self.connections)]
        envelope_id = envelope["envelope_id"]
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self.pending[envelope_id] = future
        try:
            await connection.websocket.send_text(json.dumps(envelope))
            ack = await asyncio.wait_for(future, self.ack_timeout)
        except TimeoutError:
            raise SocketError(
                f"no ack for envelope {envelope_id} within {self.ack_timeout:g} s", 504
            ) from None
        finally:
            self.pending.pop(envelope_id, None)
        return {"envelope_id": envelope_id, "ack": ack}

    def received(self, text: str) -> None:
        """Anything a client sends is an ack (or junk, which Slack ignores too)."""
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        self.acks.append(message)
        future = self.pending.get(str(message.get("envelope_id", "")))
        if future is not None and not future.done():
            future.set_result(message)

    async def disconnect_all(self, reason: str) -> int:
        message = json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "sandbox"}})
        targets = list(self.connections.values())
        for connection in targets:
            with contextlib.suppress(Exception):  # a socket closing right now needs no refresh
                await connection.websocket.send_text(message)
        return len(targets)


def socket_hub(app: Any) -> SocketHub:
    hub: SocketHub = app.state.slack_socket
    return hub


def socket_url(request: Request, ticket: str) -> str:
    """Where `apps.connections.open` sends the client: this server, ws:// instead of http://."""
    base = str(request.base_url).rstrip("/")
    return f"ws{base.removeprefix('http')}{SOCKET_PATH}?ticket={ticket}&app_id={APP_ID}"


async def socket_endpoint(websocket: WebSocket) -> None:
    hub = socket_hub(websocket.app)
    clock = websocket.app.state.slack.clock
    if not hub.redeem(websocket.query_params.get("ticket"), clock()):
        await websocket.close(code=1008)  # before accept: the handshake is refused with 403
        return
    await websocket.accept()
    hub.opened += 1
    connection = Connection(id=hub.opened, websocket=websocket)
    hub.connections[connection.id] = connection
    try:
        await websocket.send_text(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(hub.connections),
                    "debug_info": {"host": "sandbox", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        while True:
            hub.received(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        hub.connections.pop(connection.id, None)


async def _body(request: Request) -> JSON:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        raise SocketError("body must be JSON") from None
    if not isinstance(data, dict):
        raise SocketError("body must be a JSON object")
    return data


async def create_app_token(request: Request) -> Response:
    data = await _body(request)
    token = data.get("token")
    return JSONResponse({"token": socket_hub(request.app).add_app_token(str(token) if token else None)})


async def send_envelope(request: Request) -> Response:
    data = await _body(request)
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise SocketError("payload must be a JSON object")
    return JSONResponse(await socket_hub(request.app).send(str(data.get("type", "")), payload))


async def request_refresh(request: Request) -> Response:
    data = await _body(request)
    reason = str(data.get("reason") or "refresh_requested")
    return JSONResponse({"sent": await socket_hub(request.app).disconnect_all(reason)})


async def socket_status(request: Request) -> Response:
    hub = socket_hub(request.app)
    return JSONResponse({"connections": len(hub.connections), "opened": hub.opened, "acks": len(hub.acks)})


def _answering(endpoint: Any) -> Any:
    async def wrapper(request: Request) -> Response:
        try:
            response: Response = await endpoint(request)
        except SocketError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        return response

    return wrapper


SOCKET_ROUTES = [
    WebSocketRoute(SOCKET_PATH, socket_endpoint),
    Route("/_sandbox/app_tokens", _answering(create_app_token), methods=["POST"]),
    Route("/_sandbox/socket/send", _answering(send_envelope), methods=["POST"]),
    Route("/_sandbox/socket/disconnect", _answering(request_refresh), methods=["POST"]),
    Route("/_sandbox/socket/status", socket_status, methods=["GET"]),
]
