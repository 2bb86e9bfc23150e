"""The built-in rule packs; `BUILTIN` is every built-in rule, pack by pack.

Each pack module exports `RULES`. The order here is the order of `policy rules` and of the
generated docs/policy-rules.md.
"""

from __future__ import annotations

from changegate.domain.policy.model import Rule
from changegate.domain.policy.rules import (
    dockerfile,
    images,
    k8s_network,
    k8s_workloads,
    monitoring,
    odoo,
    postgresql,
    redis,
    terraform,
    traefik,
    vulnerabilities,
)

PACKS = (
    k8s_workloads,
    k8s_network,
    images,
    dockerfile,
    vulnerabilities,
    monitoring,
    terraform,
    traefik,
    postgresql,
    redis,
    odoo,
)
BUILTIN: tuple[Rule, ...] = tuple(rule for pack in PACKS for rule in pack.RULES)
