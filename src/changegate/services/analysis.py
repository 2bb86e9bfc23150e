"""Analysis templates from files, and `replay`: a template judged on recorded measurements.

No database and no catalog: a team tests its templates offline, in CI, with the same rules
the rollout worker applies to live measurements (changegate.domain.analysis).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from changegate.adapters import yamlsource
from changegate.domain import analysis
from changegate.errors import InvalidInput, Problem


def load_template(path: Path, *, display: str | None = None, max_bytes: int) -> analysis.Template:
    """The one AnalysisTemplate in a YAML or JSON file, validated (InvalidInput otherwise)."""
    return load_template_document(path, display=display, max_bytes=max_bytes)[1]


def load_template_document(
    path: Path, *, display: str | None = None, max_bytes: int
) -> tuple[Any, analysis.Template]:
    """The document (plain JSON data, to keep) and the validated template of a file."""
    shown = display or str(path)
    raw = yamlsource.read_bytes(path, display=shown, max_bytes=max_bytes)
    documents = [d for d in yamlsource.load_bytes(raw, display=shown) if d.data is not None]
    if len(documents) != 1:
        raise InvalidInput(
            [Problem(f"expected one AnalysisTemplate document, found {len(documents)}", shown)]
        )
    document = documents[0]
    template = analysis.parse_template(document.data, source=shown, locate=document.locate)
    return json.loads(json.dumps(document.data, default=str)), template


def load_recorded(
    path: Path, *, display: str | None = None, max_bytes: int
) -> dict[str, list[analysis.Measurement | tuple[object]]]:
    """Recorded measurements from a JSON file (see analysis.parse_recorded)."""
    shown = display or str(path)
    raw = yamlsource.read_bytes(path, display=shown, max_bytes=max_bytes)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput([Problem(f"not JSON: {exc}", shown)]) from None
    return analysis.parse_recorded(data, source=shown)


def replay(
    template: analysis.Template,
    recorded: Mapping[str, list[analysis.Measurement | tuple[object]]],
    *,
    args: Mapping[str, str] | None = None,
    terminate: bool = False,
) -> analysis.Replay:
    """Evaluate template (its args resolved with args) against recorded measurements."""
    metrics = template.resolve(args)
    return analysis.replay(template.name, metrics, recorded, terminate=terminate)
