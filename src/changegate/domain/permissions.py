"""Who may do what: permissions granted by catalog roles.

Every API route, CLI command and (later) web view names one permission from here, and the
service it calls checks it, so the same rule holds on every door. Finer rules (who may approve
what, separation of duties) build on top of this with the approvals issue.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from changegate.errors import Refused


class Permission(StrEnum):
    """One thing a person may do."""

    CHANGES_READ = "changes:read"
    CHANGES_CREATE = "changes:create"
    CHANGES_EDIT = "changes:edit"
    CHANGES_TRANSITION = "changes:transition"
    CHANGES_COMMENT = "changes:comment"
    CATALOG_READ = "catalog:read"
    CATALOG_RELOAD = "catalog:reload"
    AUDIT_READ = "audit:read"
    # Restoring a backup over a tenant's own database (destructive; docs/backups.md).
    BACKUPS_RESTORE = "backups:restore"
    ROLLOUTS_CONTROL = "rollouts:control"  # pause, resume, abort, promote a rollout


P = Permission
_EVERYONE = {P.CHANGES_READ, P.CATALOG_READ, P.CHANGES_COMMENT}
_DOERS = _EVERYONE | {P.CHANGES_CREATE, P.CHANGES_EDIT, P.CHANGES_TRANSITION}

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "requester": frozenset(_DOERS),
    "implementer": frozenset(_DOERS | {P.ROLLOUTS_CONTROL}),
    "approver": frozenset(_DOERS),
    "cab": frozenset(_DOERS | {P.ROLLOUTS_CONTROL}),
    "emergency-approver": frozenset(_DOERS),
    "platform-lead": frozenset(
        _DOERS | {P.CATALOG_RELOAD, P.AUDIT_READ, P.BACKUPS_RESTORE, P.ROLLOUTS_CONTROL}
    ),
    "customer-approver": frozenset(_EVERYONE),
    "auditor": frozenset(_EVERYONE - {P.CHANGES_COMMENT} | {P.AUDIT_READ}),
    "admin": frozenset(Permission),
}


def granted(roles: Iterable[str]) -> frozenset[Permission]:
    """Every permission the given roles grant together."""
    result: set[Permission] = set()
    for role in roles:
        result |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(result)


def roles_granting(permission: Permission) -> list[str]:
    return [role for role, perms in ROLE_PERMISSIONS.items() if permission in perms]


def require(person: str, roles: Iterable[str], permission: Permission) -> None:
    """Refuse unless one of the person's roles grants the permission, naming who has it."""
    roles = list(roles)
    if permission in granted(roles):
        return
    held = ", ".join(roles) if roles else "none"
    raise Refused(
        f"{person} (roles: {held}) may not {permission.value}",
        override_by=", ".join(roles_granting(permission)),
    )
