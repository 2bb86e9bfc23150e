"""Policy gate reports in the database: one per assessment, the latest of a change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from changegate.domain import canonical
from changegate.domain.policy.engine import Report
from changegate.store.schema import policy_reports as table


def insert(
    conn: sa.Connection,
    number: int,
    assessment_id: int,
    report: Report,
    *,
    content_hash: str,
    catalog_digest: str,
    created_at: datetime,
) -> None:
    """Store the report of the gate run by assessment `assessment_id` of change `number`."""
    conn.execute(
        sa.insert(table).values(
            change_id=number,
            assessment_id=assessment_id,
            created_at=canonical.as_utc(created_at),
            content_hash=content_hash,
            catalog_digest=catalog_digest,
            passed=report.passed,
            errors=report.summary.errors,
            report=report.as_dict(),
        )
    )


def of_assessment(conn: sa.Connection, assessment_id: int) -> StoredReport | None:
    """The report of one assessment, or None (assessed before the gate existed)."""
    row = conn.execute(sa.select(table).where(table.c.assessment_id == assessment_id)).first()
    return None if row is None else StoredReport.of(row)


class StoredReport:
    """A stored report with the facts of its run."""

    __slots__ = ("assessment_id", "catalog_digest", "content_hash", "created_at", "report")

    def __init__(
        self,
        report: Report,
        *,
        assessment_id: int,
        content_hash: str,
        catalog_digest: str,
        created_at: datetime,
    ) -> None:
        self.report = report
        self.assessment_id = assessment_id
        self.content_hash = content_hash
        self.catalog_digest = catalog_digest
        self.created_at = created_at

    @classmethod
    def of(cls, row: sa.Row[Any]) -> StoredReport:
        return cls(
            Report.from_dict(row.report),
            assessment_id=row.assessment_id,
            content_hash=row.content_hash,
            catalog_digest=row.catalog_digest,
            created_at=canonical.as_utc(row.created_at),
        )

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape: the run's facts and the report."""
        return {
            "assessment_id": self.assessment_id,
            "content_hash": self.content_hash,
            "catalog_digest": self.catalog_digest,
            "checked_at": canonical.to_utc_text(self.created_at),
            **self.report.as_dict(),
        }
