"""Naming network failures from the exceptions aiohttp and httpx really raise (built as they build them)."""

from __future__ import annotations

import socket
import ssl

import aiohttp
import httpx
import pytest

from bot.canvas.network import NetworkFailure, classify, describe

KEY = aiohttp.client_reqrep.ConnectionKey("canvas.example.edu", 443, True, True, None, None, None, None)


def chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("error", "kind", "phrase"),
    [
        (
            aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(-2, "Name or service not known")),
            NetworkFailure.DNS,
            "DNS lookup failed",
        ),
        (
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")),
            NetworkFailure.REFUSED,
            "connection refused",
        ),
        (
            aiohttp.ClientConnectorSSLError(KEY, ssl.SSLError(1, "wrong version")),
            NetworkFailure.TLS,
            "TLS error",
        ),
        (TimeoutError(), NetworkFailure.TIMEOUT, "timed out"),
        (aiohttp.ServerDisconnectedError(), NetworkFailure.DISCONNECTED, "connection closed"),
        (
            chained(httpx.ConnectError("x"), socket.gaierror(-2, "no")),
            NetworkFailure.DNS,
            "DNS lookup failed",
        ),
        (
            chained(httpx.ConnectError("x"), ConnectionRefusedError(111, "no")),
            NetworkFailure.REFUSED,
            "refused",
        ),
        (chained(httpx.ReadTimeout("x"), TimeoutError()), NetworkFailure.TIMEOUT, "timed out"),
        (aiohttp.ClientError("something else"), NetworkFailure.OTHER, "network error (ClientError)"),
    ],
)
def test_each_failure_is_named(error: BaseException, kind: NetworkFailure, phrase: str) -> None:
    assert classify(error) is kind
    assert phrase in describe(error)


def test_plain_http_behind_https_gets_a_hint() -> None:
    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    wrong.reason = "WRONG_VERSION_NUMBER"
    error = chained(httpx.ConnectError("x"), wrong)
    assert describe(error) == "TLS error (WRONG_VERSION_NUMBER - is it plain http?)"


def test_a_cause_loop_does_not_hang() -> None:
    first, second = httpx.ConnectError("a"), httpx.ConnectError("b")
    first.__cause__, second.__cause__ = second, first
    assert classify(first) is NetworkFailure.OTHER
