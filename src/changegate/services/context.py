"""Who is acting and on behalf of which request: passed to every service function."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from changegate.domain import catalog as catalog_model
from changegate.domain import permissions
from changegate.errors import Refused


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Actor:
    """A person from the catalog (or the system itself), with a snapshot of their name."""

    id: str
    name: str
    roles: tuple[str, ...]

    def require(self, permission: permissions.Permission) -> None:
        permissions.require(self.id, self.roles, permission)


SYSTEM = Actor(id="system", name="changegate", roles=("admin",))


@dataclass(frozen=True, slots=True)
class Context:
    """The acting person, the request id that ties audit events together, and the clock."""

    actor: Actor
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    clock: Callable[[], datetime] = utcnow

    def now(self) -> datetime:
        return self.clock()


def actor_for(catalog: catalog_model.Catalog, person_id: str | None) -> Actor:
    """The catalog person acting, or a refusal that says how to name one."""
    if not person_id:
        raise Refused(
            "no acting person: pass --as PERSON (or CHANGEGATE_USER) on the CLI, or the "
            "X-Changegate-User header on the API"
        )
    person = catalog.person(person_id)
    if person is None:
        raise Refused(f"unknown person {person_id!r}: not among the catalog's people")
    spec = person.spec
    return Actor(id=person.id, name=spec.display_name, roles=tuple(str(r) for r in spec.roles))


def context_for(
    catalog: catalog_model.Catalog,
    person_id: str | None,
    request_id: str | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> Context:
    actor = actor_for(catalog, person_id)
    return Context(actor=actor, request_id=request_id or uuid.uuid4().hex, clock=clock)
