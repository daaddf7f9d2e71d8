"""A Poller built as the runtime builds one, for the tests that drive its ticks themselves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from bot.canvas.client import CanvasClient
from bot.engine.contexts import ContextNames
from bot.engine.credentials import Credentials
from bot.engine.poll_units import PollUnits
from bot.engine.poller import Poller
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory


def poller_for_test(
    units: PollUnits,
    sessions: SessionFactory,
    client: CanvasClient,
    cipher: TokenCipher,
    clock: Callable[[], datetime],
    *,
    canvas_root: str,
    interval: float,
    slots: int = 10,
) -> Poller:
    """`slots` Canvas requests at once, on the injected clock, holding bucket leases of its own (no
    OAuth: tokens are personal access tokens)."""
    return Poller(
        units,
        sessions,
        client,
        Credentials(sessions, cipher, None, clock=clock),
        ContextNames(sessions, client),
        canvas_root=canvas_root,
        interval=interval,
        semaphore=asyncio.Semaphore(slots),
        clock=clock,
    )
