"""`changegate audit ...`: verify the hash chain, export it, sign checkpoints, make keys.

`audit verify` exits 2 when the chain is broken: like a rule refusing, it says "no" — the trail
is not trustworthy — rather than reporting a bad input or an internal failure.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from changegate.cli import output, runtime
from changegate.errors import InvalidInput, PayloadTooLarge, Problem

if TYPE_CHECKING:
    from changegate.domain.audit import AuditEvent, ChainReport

app = typer.Typer(
    help="The hash-chained audit trail: verify, export, checkpoint.", no_args_is_help=True
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
BROKEN_EXIT = 2


class ExportFormat(StrEnum):
    """What `audit export` writes."""

    JSONL = "jsonl"
    CSV = "csv"


def parse_instant(text: str | None, option: str) -> datetime | None:
    """ISO 8601 text to a datetime, as written: whether it may lack an offset is not said here.

    The audit service decides what a valid period is for every door (an offset on each
    instant, `until` after `since`); the CLI only reads the text.
    """
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            [
                Problem(
                    f"not an ISO 8601 date or instant: {text!r} (e.g. 2026-11-01 or "
                    "2026-11-01T00:00:00Z)",
                    field=option,
                )
            ]
        ) from None
    return value


# The service's names for the export's inputs, and the options that give them here.
EXPORT_OPTIONS = {"since": "--since", "until": "--until", "format": "--format"}


@contextmanager
def options_named(options: Mapping[str, str]) -> Iterator[None]:
    """Re-raise the service's InvalidInput with its fields named as this command's options."""
    try:
        yield
    except InvalidInput as exc:
        if type(exc) is not InvalidInput:
            raise
        named = [
            replace(p, field=options.get(p.field, p.field) if p.field else p.field)
            for p in exc.problems
        ]
        raise InvalidInput(named) from exc


def _read_checkpoint(path: Path, limit: int) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise InvalidInput(
            [Problem(f"cannot read file: {exc.strerror or exc}", file=str(path))]
        ) from None
    if len(raw) > limit:
        raise PayloadTooLarge([Problem(f"file is over the limit of {limit} bytes", file=str(path))])
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise InvalidInput([Problem(f"not JSON: {exc}", file=str(path), line=line)]) from None
    if not isinstance(document, dict):
        raise InvalidInput(
            [Problem("not a changegate checkpoint (expected a JSON object)", file=str(path))]
        )
    return document


def _first_bad_event(report: ChainReport, state: runtime.CliState) -> AuditEvent | None:
    from changegate.services import audit as audit_service

    if report.first_bad_seq is None:
        return None
    found = audit_service.events(
        state.app().engine, state.context(), after_seq=report.first_bad_seq - 1, limit=1
    )
    return found[0] if found and found[0].seq == report.first_bad_seq else None


@app.command("verify")
def verify(
    ctx: typer.Context,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            metavar="FILE",
            help="A signed checkpoint: also detect events cut off the end.",
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            metavar="PEM",
            help="Verify the checkpoint with this key (else "
            "CHANGEGATE_AUDIT_VERIFY_KEY or the signing key's public half).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Walk the whole chain; exit 0 when intact, 2 naming the first bad event when not."""
    from changegate.adapters import signing
    from changegate.services import audit as audit_service

    state = runtime.json_mode(ctx, as_json)
    settings = state.require_settings()
    document = (
        _read_checkpoint(checkpoint, settings.max_file_bytes) if checkpoint is not None else None
    )
    service_ctx = state.context()
    app_ = state.app()
    key = None
    if document is not None:
        key = signing.load_public(public_key) if public_key is not None else app_.verify_key()
    report = audit_service.verify(app_.engine, service_ctx, checkpoint=document, verify_key=key)
    bad = _first_bad_event(report, state) if not report.ok else None
    if as_json:
        output.emit_json({**report.as_dict(), "first_bad_event": bad.as_dict() if bad else None})
    elif report.ok:
        output.out(f"audit trail intact: {report.count} events, head {report.head_hash}")
        if report.checkpoint:
            output.out(
                f"matches the checkpoint of {report.checkpoint['created_at']} "
                f"({report.checkpoint['count']} events)"
            )
    else:
        output.out(f"audit trail BROKEN at event #{report.first_bad_seq}: {report.problem}")
        output.out(f"the first {report.count} events verify; head {report.head_hash}")
        if bad is not None:
            output.out(
                f"event #{bad.seq}: {bad.occurred_at.isoformat()} {bad.actor} "
                f"{bad.action} {bad.object_type} {bad.object_id}"
            )
    if not report.ok:
        output.note(f"error: the audit trail is not trustworthy from event #{report.first_bad_seq}")
        raise typer.Exit(BROKEN_EXIT)


@app.command("export")
def export(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", metavar="ISO", help="From this instant (inclusive).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="ISO", help="Up to this instant (exclusive).")
    ] = None,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", case_sensitive=False, help="jsonl or csv.")
    ] = ExportFormat.JSONL,
    out_file: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="FILE", help="Write here instead of stdout."),
    ] = None,
) -> None:
    """Stream the events of a period as JSON lines or CSV; the export itself is audited."""
    from changegate.services import audit as audit_service

    state = runtime.state(ctx)
    start, end = parse_instant(since, "--since"), parse_instant(until, "--until")
    service_ctx = state.context()
    with options_named(EXPORT_OPTIONS):
        rows = audit_service.export(
            state.app().engine, service_ctx, since=start, until=end, fmt=fmt.value
        )
    count = 0
    if out_file is None:
        for row in rows:
            sys.stdout.write(row)
            count += 1
        sys.stdout.flush()
    else:
        partial = out_file.with_name(out_file.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as handle:
                for row in rows:
                    handle.write(row)
                    count += 1
            os.replace(partial, out_file)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise InvalidInput(
                [Problem(f"cannot write: {exc.strerror or exc}", file=str(out_file))]
            ) from None
    events = count - 1 if fmt is ExportFormat.CSV else count
    where = f" to {out_file}" if out_file else ""
    output.note(f"exported {events} events{where}")


@app.command("checkpoint")
def checkpoint(
    ctx: typer.Context,
    out_file: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="FILE", help="Write here instead of stdout."),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", metavar="PEM", help="The private key (else CHANGEGATE_AUDIT_SIGNING_KEY)."
        ),
    ] = None,
) -> None:
    """Sign the chain's head (hash and count); keep the file where DB admins can't write."""
    from changegate.adapters import signing
    from changegate.services import audit as audit_service

    state = runtime.state(ctx)
    service_ctx = state.context()
    app_ = state.app()
    private = signing.load_private(key) if key is not None else app_.signing_key()
    document = audit_service.checkpoint(app_.engine, service_ctx, private)
    text = output.to_json(document) + "\n"
    if out_file is None:
        sys.stdout.write(text)
    else:
        try:
            out_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(
                [Problem(f"cannot write: {exc.strerror or exc}", file=str(out_file))]
            ) from None
    body = document["checkpoint"]
    output.note(
        f"signed checkpoint: {body['count']} events, head {body['head_hash']}"
        + (f", written to {out_file}" if out_file else "")
    )


def _default_public(private: Path) -> Path:
    if private.suffix == ".pem":
        return private.with_name(private.stem + ".pub.pem")
    return private.with_name(private.name + ".pub")


@app.command("keygen")
def keygen(
    out: Annotated[
        Path,
        typer.Option(
            "--out", metavar="PRIVATE.pem", help="Where to write the private key (mode 0600)."
        ),
    ],
    public: Annotated[
        Path | None,
        typer.Option(
            "--public",
            metavar="PUBLIC.pem",
            help="Where to write the public key (default: next to the private key).",
        ),
    ] = None,
) -> None:
    """Make an Ed25519 key pair for checkpoints; the private key is never printed."""
    from changegate.adapters import signing

    public_path = public or _default_public(out)
    for path in (out, public_path):
        if path.exists():
            raise InvalidInput([Problem("refusing to overwrite an existing key", file=str(path))])
    text = signing.generate(out, public_path)
    output.out(f"private key: {out} (owner-only; keep it secret, out of Git)")
    output.out(f"public key:  {public_path}")
    output.out(f"public key (base64): {text}")
    output.out("")
    output.out(
        f"sign:   CHANGEGATE_AUDIT_SIGNING_KEY={out} changegate --as PERSON audit "
        "checkpoint -o checkpoint.json"
    )
    output.out(
        f"verify: CHANGEGATE_AUDIT_VERIFY_KEY={public_path} changegate --as PERSON "
        "audit verify --checkpoint checkpoint.json"
    )
