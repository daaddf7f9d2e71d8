"""An httpx transport that sends through aiohttp: the benchmark's test of a proposed bot change.

httpcore's async pool walks every connection (and asks each socket whether it is readable) several
times per request, so with POLL_CONCURRENCY=50 the pool bookkeeping costs more CPU than everything
else the bot does. aiohttp is already a dependency (slack_sdk's async client uses it) and its pool
is O(1) per request. Plugging it in below httpx keeps CanvasClient's API and error mapping intact.
"""

from __future__ import annotations

import aiohttp
import httpx
import yarl


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, limit: int, timeout: float = 15.0) -> None:
        self._limit = limit
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                auto_decompress=False,  # httpx decodes Content-Encoding itself
                timeout=self._timeout,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            async with self._client().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=dict(request.headers),
                data=request.content or None,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
                status = response.status
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from None
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc), request=request) from None
        return httpx.Response(status, headers=headers, content=body, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
