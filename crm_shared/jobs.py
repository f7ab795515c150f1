"""A timer for long jobs that stop cleanly: the worker asks ``self.stopping()``
between steps and returns when the service is being stopped, instead of
holding the shutdown until the whole job is done (another replica, or this
one after its restart, resumes the job)."""
from __future__ import annotations

from typing import Any, Callable

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


class Stopping(DependencyProvider):
    """``self.stopping()``: True once the entrypoint that runs this worker is stopping."""

    def get_dependency(self, worker_ctx: Any) -> Callable[[], bool]:
        entrypoint = worker_ctx.entrypoint
        return lambda: bool(getattr(entrypoint, "stopping", False))
