"""Name what went wrong on the network, from the exception a client raised.

"ClientConnectorDNSError" tells an operator less than "DNS lookup failed", and a refused token must
never be reported for a host that does not resolve. aiohttp keeps the operating system's error in
`os_error`; httpx chains it as the cause. Both are walked here, so the Canvas client (aiohttp) and
`confbot check` (httpx, slack_sdk's aiohttp) describe a failure the same way. The phrases carry no
URL, header or query string, so no token can reach a message through them.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from enum import StrEnum

import aiohttp
import httpx


class NetworkFailure(StrEnum):
    """What kind of failure happened before an HTTP answer arrived."""

    DNS = "dns"
    REFUSED = "refused"
    TLS = "tls"
    TIMEOUT = "timeout"
    DISCONNECTED = "disconnected"
    OTHER = "other"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (aiohttp's `os_error`) and what it was raised from, without loops."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = getattr(current, "os_error", None)
        for nxt in (wrapped, current.__cause__, current.__context__):
            if isinstance(nxt, BaseException):
                pending.append(nxt)


def classify(error: BaseException) -> NetworkFailure:
    """The most specific kind found anywhere in the error's chain (DNS beats a generic connect error)."""
    chain = list(_chain(error))
    checks: list[tuple[NetworkFailure, tuple[type[BaseException], ...]]] = [
        (NetworkFailure.DNS, (socket.gaierror, aiohttp.ClientConnectorDNSError)),
        (NetworkFailure.TLS, (ssl.SSLError, ssl.CertificateError, aiohttp.ClientSSLError)),
        (NetworkFailure.REFUSED, (ConnectionRefusedError,)),
        (NetworkFailure.TIMEOUT, (TimeoutError, httpx.TimeoutException)),
        (
            NetworkFailure.DISCONNECTED,
            (
                ConnectionResetError,
                BrokenPipeError,
                aiohttp.ServerDisconnectedError,
                aiohttp.ClientPayloadError,
                httpx.RemoteProtocolError,
            ),
        ),
    ]
    for kind, types in checks:
        if any(isinstance(item, types) for item in chain):
            return kind
    return NetworkFailure.OTHER


def _tls_detail(error: BaseException) -> str:
    # aiohttp's TLS errors subclass ssl.SSLError without its attributes: read them with defaults.
    for item in _chain(error):
        verify = getattr(item, "verify_message", None)
        if isinstance(item, ssl.SSLCertVerificationError) and verify:
            return f"certificate not trusted: {verify}"
        reason = getattr(item, "reason", None)
        if isinstance(item, ssl.SSLError) and reason:
            return str(reason)
    return type(error).__name__


def describe(error: BaseException) -> str:
    """A short phrase for a log line or an operator, e.g. "DNS lookup failed (no such host)"."""
    kind = classify(error)
    if kind is NetworkFailure.DNS:
        return "DNS lookup failed (no such host)"
    if kind is NetworkFailure.REFUSED:
        return "connection refused (nothing listens on that host and port)"
    if kind is NetworkFailure.TLS:
        detail = _tls_detail(error)
        hint = " - is it plain http?" if "WRONG_VERSION_NUMBER" in detail else ""
        return f"TLS error ({detail}{hint})"
    if kind is NetworkFailure.TIMEOUT:
        return "timed out"
    if kind is NetworkFailure.DISCONNECTED:
        return "connection closed before a complete answer"
    return f"network error ({type(error).__name__})"
