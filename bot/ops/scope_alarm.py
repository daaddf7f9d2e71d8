"""Tell the operator, once per scope, that the Canvas developer key lacks a scope the bot needs.

A missing scope is a configuration fault: every token of the key lacks it, a refresh keeps a token's
scopes and a relink asks Canvas for scopes the key does not grant. So it must never look like a dead
token (no relink DM, no unlink); it is logged once per scope with where a Canvas admin ticks it, and
counted per scope in `confbot_canvas_missing_scope_total` so an alert can fire while it lasts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.canvas.errors import InsufficientScope
from bot.canvas.scopes import scopes_named_in, where_to_tick
from bot.ops.metrics import Metrics

log = logging.getLogger(__name__)

SCOPES_OFF = "(none requested: CANVAS_SCOPES is off but the developer key enforces scopes)"


class MissingScopeAlarm:
    """Logs each missing scope once per process and counts every refusal; holds no token."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self._told: set[str] = set()

    def refused_call(self, error: InsufficientScope) -> None:
        """Canvas answered an API call with "Insufficient scopes on access token." (the client's hook)."""
        self._raise(error.missing_scope, f"Canvas refused {error.request} (insufficient scopes on the token)")

    def refused_authorization(self, description: str, requested: Sequence[str]) -> None:
        """Canvas sent a linking browser back with `error=invalid_scope`; its description names the scopes."""
        missing = scopes_named_in(description) if requested else [SCOPES_OFF]
        for scope in missing or ["(Canvas named none)"]:
            self._raise(scope, "Canvas refused to authorize a link (invalid_scope)")

    def _raise(self, scope: str, what: str) -> None:
        if self._metrics is not None:
            self._metrics.missing_scope(scope)
        if scope in self._told:
            return
        self._told.add(scope)
        if scope == SCOPES_OFF:
            fix = "set CANVAS_SCOPES=on (or switch Enforce Scopes off on the key)"
        else:
            fix = f"a Canvas admin must tick it: {where_to_tick(scope)}"
        log.error(
            "%s: the developer key does not grant scope %s; %s. Nobody is asked to relink; "
            "`confbot check --canvas-token -` lists every missing scope",
            what,
            scope,
            fix,
        )
