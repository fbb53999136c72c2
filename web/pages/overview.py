"""Overview: counts, messages per month (by source, by scope), imports, the active adapter,
the next scheduled retrain, health."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from persona import adapters, presence, status
from persona.history import messages, runs
from web.charts import stacked_bars
from web.dependencies import dashboard_of, render

router = APIRouter()
SCOPE_NAMES = {"dm": "DMs", "group": "group DMs", "guild": "servers", "private": "private (notes, journals)"}


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    dashboard = dashboard_of(request)
    with dashboard.store.connect() as conn:
        stats = dashboard.aggregates.get(conn, "stats", status.collect_stats)
        active = adapters.active(conn)
        monthly = dashboard.aggregates.get(conn, "per_month", messages.per_month)
        imports = runs.recent_imports(conn, 8)
        training = adapters.running_runs(conn)
        bot = presence.bot_presence(conn)
    return render(
        request, "overview.html", page="overview", stats=stats, active=active, imports=imports, training=training, bot=bot,
        by_source=stacked_bars([(m.month, m.source, m.messages) for m in monthly], title="messages per month by source"),
        by_scope=stacked_bars([(m.month, SCOPE_NAMES.get(m.scope_kind, m.scope_kind), m.messages) for m in monthly],
                              title="messages per month by scope"),
        next_retrain=next_retrain(dashboard.settings.retrain_cron, dashboard.settings.timezone), model_loaded=dashboard.model_loaded,
    )


def next_retrain(cron: str, zone: str) -> datetime | None:
    """When the bot's nightly retrain fires next (the same trigger `persona run` schedules)."""
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron, timezone=zone)
    return trigger.get_next_fire_time(None, datetime.now(UTC).astimezone(trigger.timezone))
