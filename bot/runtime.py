"""Everything a running bot holds, built once from Settings: DB, cipher, clients, engine, scheduler."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.canvas.client import CanvasClient
from bot.canvas.oauth import CanvasOAuth
from bot.canvas_link import CanvasLinkFlow
from bot.config import Settings
from bot.engine.contexts import ContextNames
from bot.engine.credentials import Credentials
from bot.engine.delivery import HistoryBudget
from bot.engine.digests import DigestRunner
from bot.engine.dispatcher import Dispatcher
from bot.engine.poll_units import SubscriptionUnits, UserUnits
from bot.engine.poller import Poller
from bot.engine.quiet_summaries import QuietSummaries
from bot.engine.recordings import RecordingWatcher
from bot.engine.scheduler import EngineScheduler
from bot.metrics import Metrics
from bot.oauth_state import StateSigner
from bot.slack.clients import SlackHttp
from bot.slack.installations import EncryptedInstallationStore, MultiWorkspace
from bot.store.crypto import TokenCipher, load_or_create_keys
from bot.store.db import SessionFactory, create_engine, session_factory

log = logging.getLogger(__name__)


class SingleWorkspace:
    """SLACK_BOT_TOKEN mode: one bot token serves every team id we see.

    `client` serves interactive calls; `outbox_client` (the same token, no retries below the outbox:
    bot/slack/clients.py) the dispatcher's posts. Without one, the dispatcher uses `client`."""

    def __init__(self, client: AsyncWebClient | None, outbox_client: AsyncWebClient | None = None) -> None:
        self.client = client
        self._outbox_client = outbox_client or client

    async def for_team(self, team_id: str) -> AsyncWebClient | None:
        return self.client

    async def for_outbox(self, team_id: str) -> AsyncWebClient | None:
        return self._outbox_client


def slack_clients(http: SlackHttp, token: str | None) -> SingleWorkspace:
    """Both clients of the bot token, sharing the process's Slack session."""
    if not token:
        return SingleWorkspace(None)
    return SingleWorkspace(http.client(token), http.client(token, outbox=True))


def key_dir(settings: Settings) -> Path:
    path = settings.sqlite_path
    return path.resolve().parent if path else Path.cwd()


def build_cipher(settings: Settings) -> TokenCipher:
    raw = settings.token_encryption_keys.get_secret_value() if settings.token_encryption_keys else None
    return TokenCipher(load_or_create_keys(raw, key_dir(settings)))


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    cipher: TokenCipher
    canvas: CanvasClient
    oauth: CanvasOAuth | None
    credentials: Credentials
    contexts: ContextNames
    slack: SingleWorkspace | MultiWorkspace
    pollers: list[Poller]
    dispatcher: Dispatcher
    scheduler: EngineScheduler
    metrics: Metrics = field(init=False)
    installations: EncryptedInstallationStore | None = field(init=False)
    slack_http: SlackHttp = field(init=False)  # the one Slack session of this process
    link_flow: CanvasLinkFlow = field(init=False)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        cipher = build_cipher(settings)
        canvas = CanvasClient(
            settings.canvas_root,
            max_connections=settings.poll_concurrency,
            timeout=settings.canvas_timeout_seconds,
        )
        oauth = (
            CanvasOAuth(
                settings.canvas_root,
                settings.canvas_client_id or "",
                settings.canvas_client_secret.get_secret_value() if settings.canvas_client_secret else "",
                timeout=settings.canvas_timeout_seconds,  # a hung token endpoint holds a poll slot this long
            )
            if settings.canvas_oauth_enabled
            else None
        )
        credentials = Credentials(sessions, cipher, oauth)
        contexts = ContextNames(sessions, canvas)
        installations: EncryptedInstallationStore | None = None
        slack_http = SlackHttp(settings.slack_api_root)
        slack: SingleWorkspace | MultiWorkspace
        if settings.slack_client_id and settings.slack_client_secret:
            installations = EncryptedInstallationStore(settings.slack_client_id, engine, cipher)
            slack = MultiWorkspace(
                installations,
                slack_http,
                settings.slack_client_id,
                settings.slack_client_secret.get_secret_value(),
            )
        else:
            bot_token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
            slack = slack_clients(slack_http, bot_token)
        holder: dict[str, EngineScheduler] = {}
        metrics = Metrics()
        in_flight = asyncio.Semaphore(settings.poll_concurrency)  # shared: one Canvas budget for all units
        pollers = [
            Poller(
                units,
                sessions,
                canvas,
                credentials,
                contexts,
                canvas_root=settings.canvas_root,
                interval=settings.poll_interval_seconds,
                semaphore=in_flight,
                deadline=2 * settings.canvas_timeout_seconds,  # a whole poll: every page, refresh, look-up
                on_enqueued=lambda: holder["scheduler"].wake_dispatcher(),
                metrics=metrics,
            )
            for units in (UserUnits(), SubscriptionUnits())
        ]
        dispatcher = Dispatcher(
            sessions,
            slack,
            metrics=metrics,
            history=HistoryBudget.for_rate(settings.history_reads_per_minute),
        )

        recordings = RecordingWatcher(
            sessions,
            canvas,
            credentials,
            check_every=timedelta(seconds=max(settings.poll_interval_seconds * 2, 1)),
            on_enqueued=lambda: holder["scheduler"].wake_dispatcher(),
        )

        summaries = QuietSummaries(sessions, on_enqueued=lambda: holder["scheduler"].wake_dispatcher())

        async def poll_all() -> int:
            polled = await asyncio.gather(
                *(poller.tick() for poller in pollers), recordings.tick(), summaries.tick()
            )
            return sum(polled)

        tick = min(0.5, settings.poll_interval_seconds / 4)  # how late a due unit may be claimed
        digests = DigestRunner(
            sessions,
            canvas,
            credentials,
            canvas_root=settings.canvas_root,
            on_enqueued=lambda: holder["scheduler"].wake_dispatcher(),
        )
        scheduler = EngineScheduler(
            poll_all,
            dispatcher.tick,
            poll_every=tick,
            dispatch_every=1.0,
            periodic={"digests": (digests.tick, 30.0)},
        )
        holder["scheduler"] = scheduler
        runtime = cls(
            settings,
            engine,
            sessions,
            cipher,
            canvas,
            oauth,
            credentials,
            contexts,
            slack,
            pollers,
            dispatcher,
            scheduler,
        )
        runtime.metrics = metrics
        runtime.installations = installations
        runtime.slack_http = slack_http
        runtime.link_flow = CanvasLinkFlow(runtime, StateSigner(cipher.derived_secret("canvas-oauth-state")))
        dispatcher.relink_url = runtime.link_flow.start_url
        return runtime

    async def close(self) -> None:
        self.scheduler.shutdown()
        for poller in self.pollers:
            await poller.close()
        await self.canvas.aclose()
        await self.slack_http.aclose()
        if self.oauth is not None:
            await self.oauth.aclose()
        await self.engine.dispose()
