"""Everything a running bot holds, built once from Settings: DB, cipher, clients, engine, scheduler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from slack_bolt.async_app import AsyncApp
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.canvas.client import CanvasClient
from bot.canvas.oauth import CanvasOAuth
from bot.canvas.scopes import SCOPE_NAMES
from bot.config import Settings
from bot.domain.concurrency import ConcurrencyControl
from bot.domain.models import CanvasUser
from bot.engine.agenda import AgendaRunner
from bot.engine.attendance import AttendanceReporter
from bot.engine.canvas_link import CanvasLinkFlow
from bot.engine.channel_reminders import ChannelReminders
from bot.engine.contexts import ContextNames
from bot.engine.credentials import Credentials
from bot.engine.delivery import HistoryBudget
from bot.engine.digests import DigestRunner
from bot.engine.dispatcher import Dispatcher
from bot.engine.leases import BucketLeases
from bot.engine.limiter import AdaptiveLimiter
from bot.engine.linking import link_with_token
from bot.engine.live_events import LiveEventIntake
from bot.engine.locales import Locales
from bot.engine.oauth_state import StateSigner
from bot.engine.poll_units import PollUnits, SubscriptionUnits, UserUnits
from bot.engine.poller import Poller
from bot.engine.quiet_summaries import QuietSummaries
from bot.engine.recordings import RecordingWatcher
from bot.engine.reminders import ReminderRunner
from bot.engine.scheduler import EngineScheduler
from bot.engine.session_scan import SessionScanner
from bot.ops.metrics import Metrics
from bot.ops.scope_alarm import MissingScopeAlarm
from bot.slack.app import build_bolt_app, oauth_settings
from bot.slack.channel_commands import ChannelCommands
from bot.slack.handlers import CommandHandler, ConferenceLister
from bot.slack.home_service import HomeService
from bot.slackweb.clients import SingleWorkspace, SlackHttp, slack_clients
from bot.slackweb.installations import EncryptedInstallationStore, MultiWorkspace
from bot.store.crypto import TokenCipher, load_or_create_keys
from bot.store.db import SessionFactory, create_engine, session_factory
from bot.store.teams import forget_team

log = logging.getLogger(__name__)


def poll_every(settings: Settings) -> float:
    """Seconds between poll ticks (how late a due unit may be claimed); recordings and quiet-hour
    summaries run as often, as jobs of their own."""
    return min(0.5, settings.poll_interval_seconds / 4)


def key_dir(settings: Settings) -> Path:
    path = settings.sqlite_path
    return path.resolve().parent if path else Path.cwd()


def build_cipher(settings: Settings) -> TokenCipher:
    raw = settings.token_encryption_keys.get_secret_value() if settings.token_encryption_keys else None
    return TokenCipher(load_or_create_keys(raw, key_dir(settings)))


def canvas_oauth(settings: Settings) -> CanvasOAuth | None:
    """The token endpoint's client, when a developer key is configured."""
    if not settings.canvas_oauth_enabled:
        return None
    return CanvasOAuth(
        settings.canvas_root,
        settings.canvas_client_id or "",
        settings.canvas_client_secret.get_secret_value() if settings.canvas_client_secret else "",
        timeout=settings.canvas_timeout_seconds,  # a hung token endpoint holds a poll slot this long
    )


def slack_side(
    settings: Settings, engine: AsyncEngine, cipher: TokenCipher, http: SlackHttp
) -> tuple[SingleWorkspace | MultiWorkspace, EncryptedInstallationStore | None]:
    """Which client serves each team: each installation's own (multi-workspace) or the one bot token."""
    if settings.slack_client_id and settings.slack_client_secret:
        installations = EncryptedInstallationStore(settings.slack_client_id, engine, cipher)
        workspaces = MultiWorkspace(
            installations, http, settings.slack_client_id, settings.slack_client_secret.get_secret_value()
        )
        return workspaces, installations
    bot_token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return slack_clients(http, bot_token), None


@dataclass
class Runtime:
    """The composition root: every long-lived part of a running bot, built once from Settings.

    Only the CLI, the demo and the ASGI entry (bot/web) use it; each part it builds is handed exactly
    what it uses, never the runtime itself."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    cipher: TokenCipher
    canvas: CanvasClient
    oauth: CanvasOAuth | None
    credentials: Credentials
    contexts: ContextNames
    slack_http: SlackHttp  # the one Slack session of this process
    slack: SingleWorkspace | MultiWorkspace
    installations: EncryptedInstallationStore | None
    link_flow: CanvasLinkFlow
    locales: Locales
    metrics: Metrics
    leases: BucketLeases  # this replica's poll buckets, shared by its pollers
    pollers: list[Poller]
    dispatcher: Dispatcher
    scheduler: EngineScheduler
    live_events: LiveEventIntake
    limiter: AdaptiveLimiter
    """Canvas work in flight (polls and session scans share it), sized by Little's law."""

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        cipher = build_cipher(settings)
        metrics = Metrics()
        scope_alarm = MissingScopeAlarm(metrics)
        # POLL_CONCURRENCY is the ceiling; the limit in force follows the measured demand and latency.
        limiter = AdaptiveLimiter(
            ConcurrencyControl(ceiling=settings.poll_concurrency, interval=settings.poll_interval_seconds),
            on_limit=metrics.poll_concurrency.set,
        )
        canvas = CanvasClient(
            settings.canvas_root,
            max_connections=settings.poll_concurrency,
            timeout=settings.canvas_timeout_seconds,
            on_insufficient_scope=scope_alarm.refused_call,
            on_answer=limiter.answered,
        )
        oauth = canvas_oauth(settings)
        credentials = Credentials(sessions, cipher, oauth)
        slack_http = SlackHttp(settings.slack_api_root)
        slack, installations = slack_side(settings, engine, cipher, slack_http)
        locales = Locales(sessions, slack, default_locale=settings.default_language)
        link_flow = CanvasLinkFlow(
            sessions=sessions,
            canvas=canvas,
            cipher=cipher,
            oauth=oauth,
            slack=slack,
            signer=StateSigner(cipher.derived_secret("canvas-oauth-state")),
            canvas_root=settings.canvas_root,
            public_root=settings.public_root,
            locales=locales,
            scopes=SCOPE_NAMES if settings.canvas_scopes else (),
            scope_alarm=scope_alarm,
        )
        runtime = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            cipher=cipher,
            canvas=canvas,
            oauth=oauth,
            credentials=credentials,
            contexts=ContextNames(sessions, canvas),
            slack_http=slack_http,
            slack=slack,
            installations=installations,
            link_flow=link_flow,
            locales=locales,
            metrics=metrics,
            leases=BucketLeases(
                sessions,
                buckets=settings.poll_buckets,
                lease=timedelta(seconds=settings.poll_lease_seconds),
            ),
            pollers=[],
            dispatcher=Dispatcher(
                sessions,
                slack,
                relink_url=link_flow.start_url,
                locales=locales,
                metrics=metrics,
                history=HistoryBudget.for_rate(settings.history_reads_per_minute),
            ),
            # how late a due unit may be claimed: the poll tick
            scheduler=EngineScheduler(poll_every=poll_every(settings)),
            live_events=LiveEventIntake(sessions),
            limiter=limiter,
        )
        runtime._schedule_engine()
        return runtime

    def _schedule_engine(self) -> None:
        """The pollers (users, channel subscriptions), recordings (and the "you missed it" DMs), attendance
        reports, quiet-hour summaries and digests, each waking the dispatcher when it queues a message,
        and the scheduler's jobs that drive them."""
        settings, wake = self.settings, self.scheduler.wake_dispatcher
        in_flight = self.limiter  # shared: one Canvas budget for all units

        def poller_of(units: PollUnits) -> Poller:
            return Poller(
                units,
                self.sessions,
                self.canvas,
                self.credentials,
                self.contexts,
                canvas_root=settings.canvas_root,
                interval=settings.poll_interval_seconds,
                semaphore=in_flight,
                deadline=2 * settings.canvas_timeout_seconds,  # a whole poll: every page, refresh, look-up
                on_enqueued=wake,
                metrics=self.metrics,
                leases=self.leases,
            )

        user_poller = poller_of(UserUnits())
        self.pollers[:] = [user_poller, poller_of(SubscriptionUnits())]
        recordings = RecordingWatcher(
            self.sessions,
            self.canvas,
            self.credentials,
            check_every=timedelta(seconds=max(settings.poll_interval_seconds * 2, 1)),
            on_enqueued=wake,
            locales=self.locales,
        )
        summaries = QuietSummaries(self.sessions, on_enqueued=wake, locales=self.locales)
        digests = DigestRunner(
            self.sessions,
            self.canvas,
            self.credentials,
            canvas_root=settings.canvas_root,
            on_enqueued=wake,
            locales=self.locales,
        )

        async def poll_all() -> int:
            """Only the pollers' claims: nothing that waits on Canvas or Slack. The poll job never
            overlaps itself, so a slow recording check in here (serial Canvas requests, each up to
            CANVAS_TIMEOUT_SECONDS) held every unit of this replica unclaimed for seconds: the chaos
            soak lost alerts of sessions that started and ended inside such a stall. Recordings and
            quiet-hour summaries are jobs of their own. The bucket leases renew in a job of their own
            too; only the first heartbeat runs here, so a starting replica polls at once."""
            if self.leases.last_renewed is None:
                await self.leases.renew()
            polled = await asyncio.gather(*(poller.tick() for poller in self.pollers))
            return sum(polled)

        scanner = SessionScanner(
            self.sessions,
            self.canvas,
            self.credentials,
            self.contexts,
            units=user_poller.scheduled_units,  # it scans the users it polls
            interval=settings.session_scan_interval_seconds,
            semaphore=in_flight,
            deadline=2 * settings.canvas_timeout_seconds,
        )
        reminders = ReminderRunner(
            self.sessions,
            lead=timedelta(minutes=settings.reminder_lead_minutes),
            nudge_after=timedelta(minutes=settings.host_nudge_minutes),
            canvas_root=settings.canvas_root,
            on_enqueued=wake,
            locales=self.locales,
        )
        agendas = AgendaRunner(
            self.sessions, self.locales, canvas_root=settings.canvas_root, on_enqueued=wake
        )
        channel_reminders = ChannelReminders(
            self.sessions,
            self.locales,
            lead=timedelta(minutes=settings.reminder_lead_minutes),
            canvas_root=settings.canvas_root,
            on_enqueued=wake,
        )
        attendance = AttendanceReporter(
            self.sessions, self.canvas, self.credentials, locales=self.locales, on_enqueued=wake
        )

        async def count_demand() -> int:
            """The units this replica polls each interval (its buckets' schedules, in memory), for the
            concurrency limit: a count every few seconds follows links, relinks and takeovers."""
            units = sum(poller.scheduled for poller in self.pollers)
            self.limiter.demand(units, settings.poll_interval_seconds)
            return units

        periodic: dict[str, tuple[Callable[[], Awaitable[int]], float]] = {
            "poll-leases": (self.leases.renew, self.leases.renew_every.total_seconds()),
            "poll-demand": (count_demand, min(5.0, settings.poll_interval_seconds)),
            "recordings": (recordings.tick, poll_every(settings)),
            "quiet-summaries": (summaries.tick, poll_every(settings)),
            "digests": (digests.tick, 30.0),
            "agendas": (agendas.tick, min(15.0, settings.poll_interval_seconds)),
            "attendance": (attendance.tick, min(5.0, settings.poll_interval_seconds)),
            "session-scan": (scanner.tick, min(5.0, settings.session_scan_interval_seconds / 4)),
            "reminders": (reminders.tick, min(15.0, settings.poll_interval_seconds)),
            "channel-reminders": (channel_reminders.tick, min(15.0, settings.poll_interval_seconds)),
        }
        self.scheduler.add_jobs(poll_all, self.dispatcher.tick, periodic=periodic)

    def bolt_app(self) -> AsyncApp:
        """The Bolt app, its listeners built from the parts each one uses (bot/slack/app.py)."""
        settings = self.settings
        lister = ConferenceLister(
            self.canvas, self.contexts, self.credentials, canvas_root=settings.canvas_root
        )
        handler = CommandHandler(
            sessions=self.sessions,
            slack=self.slack,
            link_flow=self.link_flow,
            oauth=self.oauth,
            cipher=self.cipher,
            channels=ChannelCommands(self.sessions, self.canvas, self.slack, self.credentials),
            lister=lister,
            locales=self.locales,
            poll_interval=timedelta(seconds=settings.poll_interval_seconds),
            poll_buckets=settings.poll_buckets,
        )
        oauth = None
        if self.installations is not None and settings.slack_client_id and settings.slack_client_secret:
            oauth = oauth_settings(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret.get_secret_value(),
                installations=self.installations,
                engine=self.engine,
                api_root=settings.slack_api_root,
                public_root=settings.public_root,
            )

        async def forget(team_id: str) -> None:
            await forget_team(self.sessions, team_id)
            if self.installations is not None:
                await self.installations.async_delete_all(enterprise_id=None, team_id=team_id)

        async def link_token(team_id: str, slack_user_id: str, token: str) -> CanvasUser:
            return await link_with_token(
                self.sessions,
                self.canvas,
                self.cipher,
                team_id=team_id,
                slack_user_id=slack_user_id,
                token=token,
            )

        return build_bolt_app(
            client=self.slack.client or self.slack_http.client(None),
            signing_secret=(
                settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
            ),
            oauth=oauth,
            handler=handler,
            home=HomeService(
                self.sessions,
                self.slack,
                self.link_flow,
                lister,
                self.locales,
                reminder_lead=settings.reminder_lead_minutes,
            ),
            forget_team=forget,
            link_token=link_token,
            canvas_root=settings.canvas_root,
            reader=self.locales.for_user,
        )

    def poll_lag(self, now: datetime) -> float | None:
        """Seconds the polling of this replica is behind (None: not polling yet): its most overdue unit,
        or its lease heartbeat when that is further behind (a replica that cannot renew stops polling)."""
        heartbeat = self.leases.lag(now)
        if heartbeat is None:
            return None
        lags = [heartbeat, *(poller.lag(now) for poller in self.pollers)]
        return max(lags).total_seconds()

    async def close(self) -> None:
        await self.scheduler.stop()
        for poller in self.pollers:
            await poller.close()
        await self.leases.retire()
        await self.canvas.aclose()
        await self.slack_http.aclose()
        if self.oauth is not None:
            await self.oauth.aclose()
        await self.engine.dispose()
