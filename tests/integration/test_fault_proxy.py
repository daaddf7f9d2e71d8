"""The fault proxy itself: each fault does to a real HTTP client what it says."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.faults import Fault, FaultProxy, canvas_throttle, html_page
from tests.support import Sandbox


def test_without_faults_requests_pass_through(canvas_faults: FaultProxy, canvas_sandbox: Sandbox) -> None:
    direct = httpx.get(canvas_sandbox.url + "/_sandbox/requests", timeout=5)
    proxied = httpx.get(canvas_faults.url + "/_sandbox/requests", timeout=5)
    assert proxied.status_code == direct.status_code == 200
    assert proxied.json().keys() == direct.json().keys()
    assert canvas_faults.seen("/_sandbox/requests") == 1


def test_reset_after_forwarding_reaches_upstream_but_not_the_client(
    canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    canvas_faults.add(Fault("reset", path="/_sandbox/users", times=1))
    with pytest.raises(httpx.TransportError):
        httpx.post(canvas_faults.url + "/_sandbox/users", json={"name": "Ada", "token": "ada-1"}, timeout=5)
    issued = httpx.get(canvas_sandbox.url + "/_sandbox/tokens", timeout=5).json()["issued"]
    assert "ada-1" in str(issued), "the upstream processed the request"
    assert canvas_faults.count("reset") == 1
    again = httpx.post(canvas_faults.url + "/_sandbox/users", json={"name": "Bo"}, timeout=5)
    assert again.status_code == 200, "times=1: the second request passes"


def test_drop_closes_without_an_answer(canvas_faults: FaultProxy) -> None:
    canvas_faults.add(Fault("drop", path="/_sandbox/requests", forward=False))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(canvas_faults.url + "/_sandbox/requests", timeout=5)


def test_hang_runs_into_the_client_timeout(canvas_faults: FaultProxy) -> None:
    canvas_faults.add(Fault("hang", path="/_sandbox/requests"))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(canvas_faults.url + "/_sandbox/requests", timeout=0.3)


def test_canned_answers(canvas_faults: FaultProxy) -> None:
    canvas_faults.add(canvas_throttle(path="/api/v1/conferences", times=1), html_page(502, path="/api/v1/"))
    throttled = httpx.get(canvas_faults.url + "/api/v1/conferences", timeout=5)
    assert throttled.status_code == 403
    assert throttled.text == "403 Forbidden (Rate Limit Exceeded)"
    assert throttled.headers["content-type"] == "text/plain"
    page = httpx.get(canvas_faults.url + "/api/v1/conferences", timeout=5)
    assert page.status_code == 502 and page.text.startswith("<html>")


def test_delay_and_slow_body_hold_the_answer_back(canvas_faults: FaultProxy) -> None:
    canvas_faults.add(Fault("slow_body", path="/_sandbox/requests", seconds=0.5))
    started = time.monotonic()
    trickled = httpx.get(canvas_faults.url + "/_sandbox/requests", timeout=0.2)
    assert trickled.status_code == 200
    assert time.monotonic() - started >= 0.45, "a trickle gets past a per-read timeout, slowly"
    canvas_faults.clear()
    canvas_faults.add(Fault("delay", path="/_sandbox/requests", seconds=0.5, token="slow"))
    assert httpx.get(canvas_faults.url + "/_sandbox/requests", timeout=0.3).status_code == 200
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(
            canvas_faults.url + "/_sandbox/requests", headers={"Authorization": "Bearer slow"}, timeout=0.3
        )


def test_active_ends_the_outage(canvas_faults: FaultProxy) -> None:
    outage = Fault("respond", status=503)
    with canvas_faults.active(outage):
        assert httpx.get(canvas_faults.url + "/_sandbox/requests", timeout=5).status_code == 503
    assert httpx.get(canvas_faults.url + "/_sandbox/requests", timeout=5).status_code == 200


def test_endless_pages_keep_linking_to_a_fresh_next_page(canvas_faults: FaultProxy) -> None:
    canvas_faults.add(Fault("endless_pages", path="/api/v1/conferences", seconds=0.05))
    first = httpx.get(canvas_faults.url + "/api/v1/conferences", timeout=5)
    second = httpx.get(first.links["next"]["url"], timeout=5)
    assert first.json() == second.json() == {"conferences": []}
    assert first.links["next"]["url"] != second.links["next"]["url"]
    assert first.links["next"]["url"].startswith(canvas_faults.url)
