"""The worker loop: claim one due rollout step from the database, run it, record it; again.

Any number of workers may run against one database (PostgreSQL: steps are claimed with
`FOR UPDATE SKIP LOCKED`; SQLite: under its write lock), and any may be killed at any
instant: a step's claim is a lease, so a dead worker's step is claimed again once its lease
expires, and every step is idempotent (docs/rollout.md).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from changegate.domain import catalog as catalog_model
from changegate.services import rollout as rollout_service
from changegate.services.context import SYSTEM, Context, utcnow


def worker_id() -> str:
    """This process's name in claims: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Worker:
    engine: sa.Engine
    catalog: catalog_model.Catalog
    target: rollout_service.GitTarget
    name: str = field(default_factory=worker_id)
    lease: timedelta = rollout_service.DEFAULT_LEASE
    retry_after: timedelta = rollout_service.RETRY_AFTER
    clock: Callable[[], datetime] = utcnow
    report: Callable[[rollout_service.Turn], None] = lambda _turn: None
    stopping: bool = False

    def turn(self) -> rollout_service.Turn | None:
        """Claim and run one due step; None when nothing is due."""
        ctx = Context(actor=SYSTEM, request_id=f"worker-{uuid.uuid4().hex}", clock=self.clock)
        done = rollout_service.run_next(
            self.engine,
            self.catalog,
            ctx,
            self.target,
            worker=self.name,
            lease=self.lease,
            retry_after=self.retry_after,
        )
        if done is not None:
            self.report(done)
        return done

    def run(self, *, once: bool = False, poll: float = 1.0, max_steps: int | None = None) -> int:
        """Run steps until stopped; `once`: until none is due; at most `max_steps`. Returns
        how many steps were run (done, retried or lost)."""
        count = 0
        while not self.stopping and (max_steps is None or count < max_steps):
            if self.turn() is not None:
                count += 1
                continue
            if once:
                break
            time.sleep(poll)
        return count
