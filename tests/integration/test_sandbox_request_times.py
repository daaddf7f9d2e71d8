"""The sandbox Canvas's request log keeps each request's arrival time per token (for bench.slow_users)."""

from __future__ import annotations

import time

import httpx

from bot.sandbox.canvas import CanvasState, create_canvas_app
from bot.sandbox.server import serving


def test_request_log_gives_each_tokens_arrival_times_in_real_seconds_and_reset_forgets_them() -> None:
    state = CanvasState()
    state.clock.advance(3600)  # a moved sandbox clock must not move the log: periods are real time
    with serving(create_canvas_app(state)) as url, httpx.Client(base_url=url, timeout=10) as client:
        ada = client.post("/_sandbox/users", json={"name": "Ada"}).json()["token"]
        bob = client.post("/_sandbox/users", json={"name": "Bob"}).json()["token"]
        before = time.time()
        for token in (ada, ada, bob):
            client.get("/api/v1/users/self", headers={"Authorization": f"Bearer {token}"})
        after = time.time()

        plain = client.get("/_sandbox/requests").json()
        timed = client.get("/_sandbox/requests", params={"times": "1"}).json()
        assert "times_by_token" not in plain
        assert timed["by_token"] == {ada: 2, bob: 1}
        ada_times = timed["times_by_token"][ada]
        assert len(ada_times) == 2 and ada_times == sorted(ada_times)
        assert all(before <= t <= after for t in [*ada_times, *timed["times_by_token"][bob]])

        client.post("/_sandbox/requests/reset")
        assert client.get("/_sandbox/requests", params={"times": "1"}).json()["times_by_token"] == {}


def test_the_live_poll_log_leaves_out_every_other_request() -> None:
    """bench.scale reads poll periods from it: a session scan's full listing between two polls must not
    split a period in two."""
    with serving(create_canvas_app(CanvasState())) as url, httpx.Client(base_url=url, timeout=10) as client:
        ada = client.post("/_sandbox/users", json={"name": "Ada"}).json()["token"]
        auth = {"Authorization": f"Bearer {ada}"}
        client.get("/api/v1/conferences", params={"state": "live", "per_page": "100"}, headers=auth)
        client.get("/api/v1/conferences", params={"per_page": "100"}, headers=auth)  # a scan's listing
        client.get("/api/v1/users/self", headers=auth)
        live = client.get("/_sandbox/requests", params={"times": "live"}).json()["times_by_token"]
        every = client.get("/_sandbox/requests", params={"times": "1"}).json()["times_by_token"]
        assert len(live[ada]) == 1 and len(every[ada]) == 3
        assert live[ada][0] == every[ada][0]
        client.post("/_sandbox/requests/reset")
        assert client.get("/_sandbox/requests", params={"times": "live"}).json()["times_by_token"] == {}
