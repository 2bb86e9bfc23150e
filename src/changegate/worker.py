"""The worker loop: start what is due, claim one due rollout step, run it, record it; again.

Any number of workers may run against one database (PostgreSQL: steps are claimed with
`FOR UPDATE SKIP LOCKED`; SQLite: under its write lock), and any may be killed at any
instant: a step's claim is a lease, so a dead worker's step is claimed again once its lease
expires, and every step is idempotent (docs/rollout.md). `serve` runs one in a thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from changegate.domain import catalog as catalog_model
from changegate.services import rollout as rollout_service
from changegate.services.context import SYSTEM, Context, utcnow

log = logging.getLogger("changegate.worker")


def worker_id() -> str:
    """This process's name in claims: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Worker:
    engine: sa.Engine
    catalog: Callable[[], catalog_model.Catalog]
    delivery: rollout_service.Delivery
    name: str = field(default_factory=worker_id)
    lease: timedelta = rollout_service.DEFAULT_LEASE
    retry_after: timedelta = rollout_service.RETRY_AFTER
    clock: Callable[[], datetime] = utcnow
    report: Callable[[rollout_service.Turn], None] = lambda _turn: None
    note: Callable[[str], None] = lambda _text: None
    stopping: bool = False
    _reported: dict[str, str] = field(default_factory=dict, repr=False)

    def _context(self) -> Context:
        return Context(actor=SYSTEM, request_id=f"worker-{uuid.uuid4().hex}", clock=self.clock)

    def start_due(self) -> None:
        """Start due changes; a change that cannot start is noted once per distinct reason."""
        for change_id, what in rollout_service.start_due(
            self.engine, self.catalog(), self._context()
        ):
            if self._reported.get(change_id) != what:
                self._reported[change_id] = what
                self.note(f"{change_id}: {what}")

    def turn(self) -> rollout_service.Turn | None:
        """Claim and run one due step; None when nothing is due."""
        done = rollout_service.run_next(
            self.engine,
            self.catalog(),
            self._context(),
            self.delivery,
            worker=self.name,
            lease=self.lease,
            retry_after=self.retry_after,
        )
        if done is not None:
            self.report(done)
        return done

    def run(self, *, once: bool = False, poll: float = 1.0, max_steps: int | None = None) -> int:
        """Run steps until stopped; `once`: until none is due; at most `max_steps`. Returns
        how many steps were run (done, waiting, paused, failed, retried or lost)."""
        count = 0
        self.start_due()
        while not self.stopping and (max_steps is None or count < max_steps):
            if self.turn() is not None:
                count += 1
                continue
            self.start_due()
            if self.turn() is not None:
                count += 1
                continue
            if once:
                break
            time.sleep(poll)
        return count


def run_in_thread(worker: Worker, *, poll: float = 1.0) -> threading.Thread:
    """Run the worker in a daemon thread (serve's embedded worker); an unexpected error is
    logged and the loop goes on after a pause, so one bad step does not stop the rollouts."""

    def loop() -> None:
        while not worker.stopping:
            try:
                worker.run(poll=poll)
            except Exception:
                log.exception("rollout worker %s: unexpected error; going on in 5 s", worker.name)
                time.sleep(5)

    thread = threading.Thread(target=loop, name="changegate-worker", daemon=True)
    thread.start()
    return thread
