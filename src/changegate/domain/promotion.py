"""Promotion of the same artifacts: a production change ships only image digests that a
change in the environment before it (staging) implemented successfully.

Environments are ordered by their `order` in the catalog; a production environment's source is
the non-production environment of the highest order below it. A production change's images
are promoted when each one's digest is among the images of a change of the source environment
that closed successful: the same digest, not a rebuild of the same tag (a tag names nothing
that can be compared). Emergency changes are exempt (they go out before staging has run; the
CAB's retrospective looks at them), and so are changes that ship no image.

"Implemented successfully" means closed with the close code `successful`; where the catalog
declares a GitOps repository (changes are delivered by rollouts), also that the change's
rollout completed: every wave synced, verified by its analysis and probes, and baked (the
caller keeps only those candidates). Pure: the candidates are read by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from changegate.domain import catalog as catalog_model
from changegate.domain.changes import ChangeRequest, ChangeType, CloseCode


@dataclass(frozen=True, slots=True)
class Evidence:
    """One image of the change, and the source-environment change that shipped its digest."""

    image: str
    digest: str | None
    change_id: str | None  # None: no evidence

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "digest": self.digest, "change_id": self.change_id}


@dataclass(frozen=True, slots=True)
class Promotion:
    """Whether the change's images were promoted from the source environment, and the proof."""

    applies: bool
    source: str | None
    evidence: tuple[Evidence, ...] = ()
    reason: str = ""

    @property
    def promoted(self) -> bool:
        """Every image has evidence (vacuously true when promotion does not apply)."""
        return all(item.change_id is not None for item in self.evidence)

    @property
    def staging_verified(self) -> bool | None:
        """What the risk score weighs: None when promotion does not apply."""
        return self.promoted if self.applies else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "applies": self.applies,
            "source_environment": self.source,
            "promoted": self.promoted,
            "reason": self.reason,
            "evidence": [item.as_dict() for item in self.evidence],
        }


def source_environment(catalog: catalog_model.Catalog, environment: str) -> str | None:
    """The environment a production environment's artifacts come from, or None."""
    target = catalog.environments.get(environment)
    if target is None or not target.spec.production:
        return None
    below = [
        entity
        for entity in catalog.environments.values()
        if entity.spec.order < target.spec.order and not entity.spec.production
    ]
    return max(below, key=lambda entity: entity.spec.order).id if below else None


def applies(catalog: catalog_model.Catalog, change: ChangeRequest) -> str | None:
    """The source environment when the change must show promotion evidence, else None."""
    if change.spec.type is ChangeType.EMERGENCY or not change.spec.artifacts.images:
        return None
    return source_environment(catalog, change.spec.environment)


def evaluate(
    catalog: catalog_model.Catalog,
    change: ChangeRequest,
    candidates: Iterable[ChangeRequest],
) -> Promotion:
    """The promotion of `change` given the source environment's closed changes."""
    source = applies(catalog, change)
    if source is None:
        why = (
            "an emergency change is exempt"
            if change.spec.type is ChangeType.EMERGENCY
            else "no image, or not a production environment with an environment before it"
        )
        return Promotion(False, None, (), f"promotion does not apply: {why}")
    shipped: dict[str, str] = {}
    for candidate in candidates:
        if (
            candidate.spec.environment != source
            or candidate.close_code is not CloseCode.SUCCESSFUL
            or candidate.number == change.number
        ):
            continue
        for image in candidate.spec.artifacts.images:
            if image.digest is not None:
                # The newest successful change is the evidence (candidates come newest first).
                shipped.setdefault(image.digest, candidate.id)
    evidence = tuple(
        Evidence(image.ref, image.digest, shipped.get(image.digest) if image.digest else None)
        for image in change.spec.artifacts.images
    )
    missing = [item for item in evidence if item.change_id is None]
    if not missing:
        links = ", ".join(f"{item.image} by {item.change_id}" for item in evidence)
        return Promotion(True, source, evidence, f"promoted from {source}: {links}")
    named = "; ".join(
        f"{item.image} has no digest (a tag cannot be promoted)"
        if item.digest is None
        else f"{item.image}@{item.digest} was not shipped by a successful {source} change"
        for item in missing
    )
    return Promotion(
        True,
        source,
        evidence,
        f"not promoted from {source}: {named}; ship the very same digests through {source} first",
    )
