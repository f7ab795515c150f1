"""A timer for long jobs that stop cleanly: the worker asks ``self.stopping()``
between steps and returns when the service is being stopped, instead of
holding the shutdown until the whole job is done (another replica, or this
one after its restart, resumes the job)."""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable, TypeVar

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from nameko.timer import Timer


class JobTimer(Timer):
    stopping = False

    def stop(self) -> None:
        self.stopping = True  # before the timer waits for its running worker
        super().stop()

    def kill(self) -> None:
        self.stopping = True
        super().kill()


job_timer = JobTimer.decorator


class SettingJobTimer(JobTimer):
    """``@setting_job_timer("SETTING")``: a ``JobTimer`` whose interval is a setting of the service
    (its validated value in the config; the settings class gives its default)."""

    def __init__(self, setting: str, **kwargs: Any) -> None:
        super().__init__(interval=0, **kwargs)
        self.setting = setting

    def setup(self) -> None:
        self.interval = float(self.container.config[self.setting])
        super().setup()


setting_job_timer = SettingJobTimer.decorator


class Stopping(DependencyProvider):
    """``self.stopping()``: True once the entrypoint that runs this worker is stopping."""

    def get_dependency(self, worker_ctx: Any) -> Callable[[], bool]:
        entrypoint = worker_ctx.entrypoint
        return lambda: bool(getattr(entrypoint, "stopping", False))


Job = TypeVar("Job")


def claim_oldest(session: Any, model: type[Job], statuses: tuple[str, ...], lease_seconds: float) -> Job | None:
    """The oldest job in ``statuses`` whose lease has run out (or that has none), leased to this
    runner for ``lease_seconds``: replicas share the jobs without running one twice (``FOR UPDATE
    SKIP LOCKED``; the caller commits). ``model`` has ``status``, ``lease_until``, ``created_at``."""
    now = dt.datetime.now(dt.timezone.utc)
    m: Any = model
    job = session.scalars(
        sa.select(m).where(m.status.in_(statuses), sa.or_(m.lease_until.is_(None), m.lease_until < now))
        .order_by(m.created_at).limit(1).with_for_update(skip_locked=True)).first()
    if job is not None:
        job.lease_until = now + dt.timedelta(seconds=lease_seconds)
    return job
