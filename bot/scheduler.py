"""The nightly incremental retrain, on APScheduler 3.x in the bot's event loop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

log = logging.getLogger(__name__)

JOB_ID = "nightly-retrain"


def make_scheduler(cron: str, timezone: str, job: Callable[[], Awaitable[None]]) -> AsyncIOScheduler:
    """One job, never two at once; runs missed while the bot was down are coalesced into one
    (within an hour's grace), so a laptop that slept through 03:00 retrains when it wakes."""
    scheduler = AsyncIOScheduler(timezone=timezone)
    scheduler.add_job(job, CronTrigger.from_crontab(cron, timezone=timezone), id=JOB_ID, coalesce=True, max_instances=1,
                      misfire_grace_time=3600, replace_existing=True)
    return scheduler


def next_run(scheduler: AsyncIOScheduler | None) -> datetime | None:
    job = scheduler.get_job(JOB_ID) if scheduler is not None else None
    return job.next_run_time if job is not None else None
