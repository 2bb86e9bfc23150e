"""Use cases on the audit trail: verify the chain, export it, sign checkpoints."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from changegate.adapters import signing
from changegate.domain import audit, canonical
from changegate.domain.permissions import Permission
from changegate.errors import InvalidInput, Problem
from changegate.services.context import Context
from changegate.store import audit as audit_store
from changegate.store import db

EXPORT_FIELDS = (
    "seq",
    "occurred_at",
    "actor",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "request_id",
    "prev_hash",
    "hash",
)


def record(
    conn: sa.Connection,
    ctx: Context,
    action: str,
    object_type: str,
    object_id: str,
    before: Any,
    after: Any,
) -> audit.AuditEvent:
    """Append an event for the acting person inside the caller's transaction."""
    return audit_store.append(
        conn,
        occurred_at=ctx.now(),
        actor=ctx.actor.id,
        actor_name=ctx.actor.name,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
        request_id=ctx.request_id,
    )


def verify(
    engine: sa.Engine,
    ctx: Context,
    *,
    checkpoint: dict[str, Any] | None = None,
    verify_key: Ed25519PublicKey | None = None,
) -> audit.ChainReport:
    """Walk the whole chain; with a signed checkpoint, also detect truncation behind it."""
    ctx.actor.require(Permission.AUDIT_READ)
    parsed = _checked_checkpoint(checkpoint, verify_key) if checkpoint is not None else None
    with engine.connect() as conn:
        report = audit.verify_chain(audit_store.iter_events(conn))
        if report.ok:
            report = audit.check_against_head(report, audit_store.head(conn)[0])
        if parsed is None:
            return report
        return audit.check_against_checkpoint(
            report, parsed, audit_store.hash_at(conn, parsed.count)
        )


def _checked_checkpoint(document: dict[str, Any], key: Ed25519PublicKey | None) -> audit.Checkpoint:
    if key is None:
        raise InvalidInput(
            [
                Problem(
                    "verifying against a checkpoint needs the public key: set "
                    "CHANGEGATE_AUDIT_VERIFY_KEY (or CHANGEGATE_AUDIT_SIGNING_KEY)",
                    field="checkpoint",
                )
            ]
        )
    try:
        body = document["checkpoint"]
        if body.get("format") != audit.CHECKPOINT_FORMAT:
            raise ValueError("unknown format")
        parsed = audit.Checkpoint(
            head_hash=str(body["head_hash"]),
            count=int(body["count"]),
            created_at=datetime.fromisoformat(str(body["created_at"]).replace("Z", "+00:00")),
        )
        signature = str(document["signature"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(
            [Problem(f"not a changegate checkpoint ({exc})", field="checkpoint")]
        ) from None
    if not signing.verify(key, parsed.payload(), signature):
        raise InvalidInput(
            [
                Problem(
                    "the checkpoint's signature does not verify with the "
                    "configured public key: it was forged or altered",
                    field="checkpoint.signature",
                )
            ]
        )
    return parsed


def checkpoint(engine: sa.Engine, ctx: Context, key: Ed25519PrivateKey) -> dict[str, Any]:
    """Sign the head of a verified chain, to be kept somewhere the database's admins can't reach."""
    ctx.actor.require(Permission.AUDIT_READ)
    with db.transaction(engine) as conn:
        report = audit.verify_chain(audit_store.iter_events(conn))
        if not report.ok:
            raise InvalidInput(
                [Problem(f"refusing to checkpoint a broken chain: {report.problem}", field="audit")]
            )
        point = audit.Checkpoint(report.head_hash, report.count, ctx.now())
        document = {
            "checkpoint": json.loads(point.payload()),
            "signature": signing.sign(key, point.payload()),
            "public_key": signing.public_text(key.public_key()),
        }
        record(
            conn,
            ctx,
            "audit.checkpointed",
            "audit",
            "chain",
            None,
            {"count": point.count, "head_hash": point.head_hash},
        )
    return document


def export(
    engine: sa.Engine,
    ctx: Context,
    *,
    since: datetime | None,
    until: datetime | None,
    fmt: str,
) -> Iterator[str]:
    """Events of a period as JSON lines or CSV, streamed; the export itself is audited."""
    ctx.actor.require(Permission.AUDIT_READ)
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput([Problem("format must be jsonl or csv", field="format")])
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(
                [Problem("needs a timezone offset, e.g. 2026-11-01T00:00:00Z", field=name)]
            )
    if since is not None and until is not None and until <= since:
        raise InvalidInput([Problem("until must be after since", field="until")])
    with db.transaction(engine) as conn:
        record(
            conn,
            ctx,
            "audit.exported",
            "audit",
            "chain",
            None,
            {
                "since": canonical.to_utc_text(since) if since else None,
                "until": canonical.to_utc_text(until) if until else None,
                "format": fmt,
            },
        )
    return _rows(engine, since, until, fmt)


def _rows(
    engine: sa.Engine, since: datetime | None, until: datetime | None, fmt: str
) -> Iterator[str]:
    with engine.connect() as conn:
        if fmt == "csv":
            yield _csv_line(EXPORT_FIELDS)
        for event in audit_store.iter_events(conn, since=since, until=until):
            data = event.as_dict()
            if fmt == "jsonl":
                yield canonical.canonical_json(data).decode("utf-8") + "\n"
            else:
                yield _csv_line(
                    [
                        data[name]
                        if name not in ("before", "after")
                        else canonical.canonical_json(data[name]).decode("utf-8")
                        for name in EXPORT_FIELDS
                    ]
                )


def _csv_line(values: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def events(
    engine: sa.Engine,
    ctx: Context,
    *,
    object_id: str | None = None,
    after_seq: int = 0,
    limit: int = 100,
) -> list[audit.AuditEvent]:
    """A page of events in sequence order (for the API and `change show`)."""
    ctx.actor.require(Permission.AUDIT_READ if object_id is None else Permission.CHANGES_READ)
    with engine.connect() as conn:
        return list(
            audit_store.iter_events(conn, object_id=object_id, after_seq=after_seq, limit=limit)
        )
