"""Terraform plans: stateful deletes, public exposure, encryption, deletion protection, counts.

The input is the JSON of `terraform show -json PLANFILE` (Format.TERRAFORM_PLAN). Each
`resource_changes[]` entry says what the plan does to one resource instance: `change.actions`
(`["create"]`, `["update"]`, `["delete"]`, `["delete", "create"]` or `["create", "delete"]` for
a replace, `["no-op"]`, `["read"]`, `["forget"]`), the object `before` and `after`, and
`after_unknown`, a mirror of `after` where `true` marks a value Terraform will only know during
the apply (an ARN, an id, anything computed from another resource not yet created).

Values unknown until apply are unknown, not absent: `after` holds `null` for them, and reading
that `null` as "not set" or `false` would report a database without deletion protection when
the protection is merely computed. Every attribute read here goes through `ResourceChange.value`,
which says whether the value is known; a rule that needs an unknown value says nothing (it
cannot tell, and a guess either way would be wrong half the time).

The plan's `format_version` is checked first (`tf.format-version`): the format promises
compatibility within a major version, so a plan of another major version is refused and no
other rule reads it. Rules name the resource as `Resource(kind=<type>, namespace=<module
address>, name=<address>)`, so a waiver can select `kind: aws_db_instance` or a module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.model import Document, Format, Hit, Path, Resource, Severity, rule

# The major version of the plan JSON format this pack reads ("1.0" since Terraform 1.1).
SUPPORTED_MAJOR = 1
_VERSION = re.compile(r"^(\d{1,4})(?:\.\d{1,4}){0,2}$")

# Resource types holding data that a delete or a replace destroys: the resource type and what
# it is, for messages. A module constant so the policy config can extend it later.
STATEFUL_RESOURCES: Mapping[str, str] = MappingProxyType(
    {
        # Databases
        "aws_db_instance": "database",
        "aws_rds_cluster": "database",
        "aws_rds_global_cluster": "database",
        "aws_docdb_cluster": "database",
        "aws_neptune_cluster": "database",
        "aws_redshift_cluster": "database",
        "aws_dynamodb_table": "database",
        "aws_opensearch_domain": "database",
        "aws_elasticsearch_domain": "database",
        "google_sql_database_instance": "database",
        "google_sql_database": "database",
        "google_alloydb_cluster": "database",
        "google_spanner_instance": "database",
        "google_spanner_database": "database",
        "google_bigtable_instance": "database",
        "azurerm_postgresql_flexible_server": "database",
        "azurerm_postgresql_flexible_server_database": "database",
        "azurerm_postgresql_server": "database",
        "azurerm_postgresql_database": "database",
        "azurerm_mysql_flexible_server": "database",
        "azurerm_mysql_flexible_database": "database",
        "azurerm_mssql_server": "database",
        "azurerm_mssql_database": "database",
        "azurerm_cosmosdb_account": "database",
        "digitalocean_database_cluster": "database",
        "scaleway_rdb_instance": "database",
        "postgresql_database": "database",
        "mysql_database": "database",
        # Volumes and file systems
        "aws_ebs_volume": "volume",
        "aws_efs_file_system": "volume",
        "aws_fsx_lustre_file_system": "volume",
        "aws_fsx_ontap_file_system": "volume",
        "aws_fsx_openzfs_file_system": "volume",
        "aws_fsx_windows_file_system": "volume",
        "google_compute_disk": "volume",
        "google_compute_region_disk": "volume",
        "google_filestore_instance": "volume",
        "azurerm_managed_disk": "volume",
        "azurerm_storage_share": "volume",
        "kubernetes_persistent_volume": "volume",
        "kubernetes_persistent_volume_v1": "volume",
        "kubernetes_persistent_volume_claim": "volume",
        "kubernetes_persistent_volume_claim_v1": "volume",
        "digitalocean_volume": "volume",
        "hcloud_volume": "volume",
        "openstack_blockstorage_volume_v3": "volume",
        "scaleway_instance_volume": "volume",
        # Buckets
        "aws_s3_bucket": "bucket",
        "google_storage_bucket": "bucket",
        "azurerm_storage_account": "bucket",
        "azurerm_storage_container": "bucket",
        "digitalocean_spaces_bucket": "bucket",
        "scaleway_object_bucket": "bucket",
        "minio_s3_bucket": "bucket",
        # DNS zones
        "aws_route53_zone": "DNS zone",
        "google_dns_managed_zone": "DNS zone",
        "azurerm_dns_zone": "DNS zone",
        "azurerm_private_dns_zone": "DNS zone",
        "cloudflare_zone": "DNS zone",
        "digitalocean_domain": "DNS zone",
        # Encryption keys
        "aws_kms_key": "KMS key",
        "aws_kms_replica_key": "KMS key",
        "google_kms_crypto_key": "KMS key",
        "azurerm_key_vault": "KMS key",
        "azurerm_key_vault_key": "KMS key",
        # Redis and other in-memory stores
        "aws_elasticache_replication_group": "Redis cluster",
        "aws_elasticache_cluster": "Redis cluster",
        "aws_elasticache_serverless_cache": "Redis cluster",
        "aws_memorydb_cluster": "Redis cluster",
        "google_redis_instance": "Redis cluster",
        "google_redis_cluster": "Redis cluster",
        "azurerm_redis_cache": "Redis cluster",
        "azurerm_redis_enterprise_cluster": "Redis cluster",
    }
)

# Ports of administration and data services that must never face the whole internet.
ADMIN_PORTS: Mapping[int, str] = MappingProxyType(
    {
        22: "SSH",
        3389: "RDP",
        5432: "PostgreSQL",
        3306: "MySQL",
        6379: "Redis",
        27017: "MongoDB",
        9200: "Elasticsearch",
        2379: "etcd",
        10250: "kubelet",
        6443: "Kubernetes API",
        8069: "Odoo",
    }
)
# Sources meaning "anyone": CIDRs, and Azure's `*`, `Internet` and `Any` service tags.
_WORLD = frozenset({"0.0.0.0/0", "::/0", "*", "internet", "any"})
# Protocols meaning "every protocol and so every port".
_ALL_PROTOCOLS = frozenset({"-1", "all", "*"})
# Protocols the admin services above answer on (TCP; UDP for RDP and friends).
_PORT_PROTOCOLS = frozenset({"tcp", "6", "udp", "17"})
_PUBLIC_S3_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
_PUBLIC_S3_GROUPS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
# Azure firewall rules from "every address" (not 0.0.0.0-0.0.0.0, which means Azure services).
_ANY_IPV4 = ("0.0.0.0", "0.0.0.0/0")  # noqa: S104 - compared with, never bound to
_PUBLIC_GCP_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
_S3_BLOCKS = (
    "block_public_acls",
    "block_public_policy",
    "ignore_public_acls",
    "restrict_public_buckets",
)

# (resource type, attribute) pairs that must not be false: encryption at rest.
ENCRYPTION_SETTINGS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "aws_db_instance": ("storage_encrypted",),
        "aws_rds_cluster": ("storage_encrypted",),
        "aws_docdb_cluster": ("storage_encrypted",),
        "aws_neptune_cluster": ("storage_encrypted",),
        "aws_ebs_volume": ("encrypted",),
        "aws_efs_file_system": ("encrypted",),
        "aws_redshift_cluster": ("encrypted",),
        "aws_elasticache_replication_group": ("at_rest_encryption_enabled",),
    }
)
# Block devices inside an instance or launch configuration, each with its own `encrypted`.
_BLOCK_DEVICE_TYPES = frozenset({"aws_instance", "aws_launch_configuration"})
_BLOCK_DEVICES = ("root_block_device", "ebs_block_device")

# Resource types and their deletion-protection attribute.
DELETION_PROTECTION: Mapping[str, str] = MappingProxyType(
    {
        "aws_db_instance": "deletion_protection",
        "aws_rds_cluster": "deletion_protection",
        "aws_docdb_cluster": "deletion_protection",
        "aws_neptune_cluster": "deletion_protection",
        "google_sql_database_instance": "deletion_protection",
    }
)

_PUBLIC_DB_FLAG_TYPES = frozenset(
    {
        "aws_db_instance",
        "aws_rds_cluster_instance",
        "aws_redshift_cluster",
        "aws_neptune_cluster_instance",
    }
)
_AZURE_DB_FIREWALL_TYPES = frozenset(
    {
        "azurerm_postgresql_flexible_server_firewall_rule",
        "azurerm_postgresql_firewall_rule",
        "azurerm_mysql_flexible_server_firewall_rule",
        "azurerm_mysql_firewall_rule",
        "azurerm_mariadb_firewall_rule",
        "azurerm_mssql_firewall_rule",
        "azurerm_sql_firewall_rule",
    }
)


# --------------------------------------------------------------------------- reading plans


def version_major(value: Any) -> int | None:
    """The major version of a plan's `format_version` ("1.2" -> 1), None when unreadable."""
    if not isinstance(value, str):
        return None
    match = _VERSION.match(value.strip())
    return int(match.group(1)) if match else None


def supported(document: Document) -> bool:
    """Whether the tf rules can read this plan: a `format_version` of major version 1."""
    return version_major(document.get("format_version")) == SUPPORTED_MAJOR


def plans(changeset: ChangeSet) -> Iterator[Document]:
    """The plans of the change set the tf rules evaluate (supported format versions only)."""
    for document in changeset.of_format(Format.TERRAFORM_PLAN):
        if supported(document):
            yield document


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """One managed resource instance's planned change, read defensively."""

    document: Document
    index: int
    entry: dict[str, Any]
    change: dict[str, Any]
    actions: tuple[str, ...]

    @property
    def address(self) -> str:
        return _text(self.entry.get("address"))

    @property
    def type(self) -> str:
        return _text(self.entry.get("type"))

    @property
    def module(self) -> str:
        return _text(self.entry.get("module_address"))

    @property
    def path(self) -> Path:
        return ("resource_changes", self.index)

    @property
    def action(self) -> str:
        """create, update, delete, replace, no-op, read, forget, or the actions joined."""
        if set(self.actions) == {"delete", "create"} and len(self.actions) == 2:
            return "replace"
        if len(self.actions) == 1:
            return self.actions[0]
        return "+".join(self.actions)

    @property
    def writes(self) -> bool:
        """Whether the plan leaves this resource with new settings (create, update, replace)."""
        return self.action in ("create", "update", "replace")

    @property
    def resource(self) -> Resource:
        return Resource("", self.type, self.module, self.address)

    def value(self, *path: str | int) -> tuple[Any, bool]:
        """The planned value at path inside `after`, and whether it is known before apply."""
        if _unknown(self.change.get("after_unknown"), path):
            return None, False
        after = self.change.get("after")
        value: Any = after
        for step in path:
            if isinstance(step, str) and isinstance(value, dict):
                value = value.get(step)
            elif isinstance(step, int) and isinstance(value, list) and 0 <= step < len(value):
                value = value[step]
            else:
                return None, True
        return value, True

    def after_path(self, *path: str | int) -> Path:
        return (*self.path, "change", "after", *path)

    def hit(self, message: str, *after: str | int) -> Hit:
        """A hit on this resource, at a path inside `after` (or the entry itself)."""
        where = self.after_path(*after) if after else self.path
        return Hit(self.document, where, message, resource=self.resource)


def _unknown(marks: Any, path: tuple[str | int, ...]) -> bool:
    """Whether after_unknown marks the value at path (or any parent of it) as unknown."""
    node = marks
    if node is True:
        return True
    for step in path:
        if isinstance(step, str) and isinstance(node, dict):
            node = node.get(step)
        elif isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
            node = node[step]
        else:
            return False
        if node is True:
            return True
    return False


def resource_changes(document: Document) -> Iterator[ResourceChange]:
    """The plan's changes to managed resources (data sources are only read)."""
    entries = document.get("resource_changes")
    if not isinstance(entries, list):
        return
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("mode", "managed") != "managed":
            continue
        change = entry.get("change")
        if not isinstance(change, dict):
            continue
        raw = change.get("actions")
        actions = tuple(a for a in raw if isinstance(a, str)) if isinstance(raw, list) else ()
        yield ResourceChange(document, index, entry, change, actions)


def _changes(changeset: ChangeSet) -> Iterator[ResourceChange]:
    for document in plans(changeset):
        yield from resource_changes(document)


def _is_false(value: Any) -> bool:
    """False as Terraform writes it (a bool), or as some providers do ("false")."""
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _strings(value: Any) -> list[str]:
    """A string or a list of strings as a list; anything else as nothing."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _attribute_path(steps: Any) -> str:
    if not isinstance(steps, list):
        return ""
    text = ""
    for step in steps:
        if isinstance(step, int) and not isinstance(step, bool):
            text += f"[{step}]"
        elif isinstance(step, str):
            text += f".{step}" if text else step
    return text


# --------------------------------------------------------------------------- format version


@rule(
    "tf.format-version",
    "Terraform plans have a supported format version",
    Severity.ERROR,
    rationale=(
        "The plan JSON promises compatibility within a major `format_version` and asks readers "
        "to reject any other major version, whose meaning may have changed. A plan changegate "
        "cannot read is not a plan it has checked: the other tf rules skip it, and this "
        "finding says so, so the gate fails rather than passing an unread plan."
    ),
    remediation=(
        "Produce the plan with Terraform 1.1 or later (`terraform plan -out=tfplan` then "
        "`terraform show -json tfplan > plan.json`), which writes format_version 1.x."
    ),
    waivable=False,
)
def format_version(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document in changeset.of_format(Format.TERRAFORM_PLAN):
        if supported(document):
            continue
        value = document.get("format_version")
        shown = repr(value)[:40] if value is not None else "missing"
        written = document.get("terraform_version")
        by = f" (written by Terraform {written[:40]})" if isinstance(written, str) else ""
        yield Hit(
            document,
            ("format_version",),
            f"plan format_version {shown}{by} is not supported: changegate reads format "
            f"{SUPPORTED_MAJOR}.x (Terraform 1.1 and later); the plan was not evaluated",
        )


# --------------------------------------------------------------------------- stateful deletes


@rule(
    "tf.stateful-delete",
    "Deleting or replacing stateful resources requires a high-risk approval",
    Severity.ERROR,
    rationale=(
        "Databases, volumes, buckets, DNS zones, KMS keys and Redis clusters hold data or "
        "identity that a delete destroys and a re-create does not bring back: a replaced "
        "database starts empty, a deleted KMS key makes everything it encrypted unreadable, a "
        "re-created DNS zone gets new name servers. Replaces often hide in an innocent-looking "
        "attribute change that forces a new resource, so every delete and replace of such a "
        "resource needs a high-risk approval."
    ),
    remediation=(
        "Check the plan's `replace_paths` for the attribute forcing the replacement and change "
        "it in place where the provider allows; protect the resource with "
        "`lifecycle { prevent_destroy = true }`; when the delete is intended, take a backup "
        "and get the change approved as high risk (or waive this finding with the approval)."
    ),
    escalates=True,
)
def stateful_delete(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for change in _changes(changeset):
        category = STATEFUL_RESOURCES.get(change.type)
        if category is None or change.action not in ("delete", "replace"):
            continue
        if change.action == "delete":
            what = "deletes"
        elif change.actions[0] == "delete":
            what = "replaces (destroy, then create)"
        else:
            what = "replaces (create, then destroy)"
        paths = change.change.get("replace_paths")
        forced = [_attribute_path(p) for p in paths] if isinstance(paths, list) else []
        forced = [p for p in forced if p]
        detail = f", forced by {', '.join(forced[:5])}" if forced else ""
        reason = change.entry.get("action_reason")
        if isinstance(reason, str) and reason and not forced:
            detail = f" ({reason.replace('_', ' ')})"
        deposed = " (deposed object)" if change.entry.get("deposed") else ""
        yield change.hit(
            f"plan {what} {category} {change.address}{deposed}{detail}: deleting or replacing "
            "stateful data requires a high-risk approval"
        )


# --------------------------------------------------------------------------- public exposure


def _port(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _port_ranges(text: Any) -> list[tuple[int, int]]:
    """`22`, `1000-2000`, `*` (any) as (low, high) ranges; unreadable text as none."""
    ranges: list[tuple[int, int]] = []
    for written in _strings(text):
        item = written.strip()
        if item in ("*", ""):
            ranges.append((0, 65535))
            continue
        low, _, high = item.partition("-")
        first, last = _port(low), _port(high) if high else _port(low)
        if first is not None and last is not None:
            ranges.append((first, last))
    return ranges


def _admin_ports(ranges: Iterable[tuple[int, int]]) -> list[int]:
    found: set[int] = set()
    for low, high in ranges:
        found.update(port for port in ADMIN_PORTS if low <= port <= high)
    return sorted(found)


def _world(sources: Iterable[str]) -> list[str]:
    return [source for source in sources if source.strip().lower() in _WORLD]


def _protocol(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value.strip().lower() if isinstance(value, str) else None


def _describe_ports(ports: list[int]) -> str:
    return ", ".join(f"{ADMIN_PORTS[p]} ({p})" for p in ports)


@dataclass(frozen=True, slots=True)
class _Opening:
    """One ingress rule letting the world reach admin ports, and where it is in `after`."""

    ports: list[int]
    sources: list[str]
    where: tuple[str | int, ...]
    label: str


def _aws_rule(
    change: ResourceChange, where: tuple[str | int, ...], cidr_keys: tuple[str, ...], proto_key: str
) -> _Opening | None:
    sources: list[str] = []
    for key in cidr_keys:
        value, known = change.value(*where, key)
        if not known:
            return None
        sources.extend(_strings(value))
    world = _world(sources)
    if not world:
        return None
    (protocol, p_known), (low, l_known), (high, h_known) = (
        change.value(*where, proto_key),
        change.value(*where, "from_port"),
        change.value(*where, "to_port"),
    )
    if not (p_known and l_known and h_known):
        return None
    proto = _protocol(protocol)
    if proto in _ALL_PROTOCOLS:
        ranges = [(0, 65535)]
    elif proto in _PORT_PROTOCOLS:
        first, last = _port(low), _port(high)
        if first is None or last is None:
            return None
        ranges = [(first, last)]
    else:
        return None
    ports = _admin_ports(ranges)
    return _Opening(ports, world, where, "") if ports else None


def _gcp_firewall(change: ResourceChange) -> Iterator[_Opening]:
    direction, known = change.value("direction")
    disabled, d_known = change.value("disabled")
    if not known or not d_known or _is_true(disabled):
        return
    if direction is not None and _protocol(direction) != "ingress":
        return
    sources, s_known = change.value("source_ranges")
    world = _world(_strings(sources)) if s_known else []
    if not world:
        return
    allows, a_known = change.value("allow")
    if not a_known or not isinstance(allows, list):
        return
    for index, allow in enumerate(allows):
        if not isinstance(allow, dict) or _unknown(
            change.change.get("after_unknown"), ("allow", index)
        ):
            continue
        proto = _protocol(allow.get("protocol"))
        ports = allow.get("ports")
        if proto in _ALL_PROTOCOLS or (proto in _PORT_PROTOCOLS and not ports):
            ranges = [(0, 65535)]
        elif proto in _PORT_PROTOCOLS:
            ranges = _port_ranges(ports)
        else:
            continue
        found = _admin_ports(ranges)
        if found:
            yield _Opening(found, world, ("allow", index), f" (allow {index})")


def _azure_rule(
    rule_data: dict[str, Any], where: tuple[str | int, ...], label: str
) -> _Opening | None:
    if _protocol(rule_data.get("direction")) != "inbound":
        return None
    if _protocol(rule_data.get("access")) != "allow":
        return None
    proto = _protocol(rule_data.get("protocol"))
    if proto not in _ALL_PROTOCOLS and proto not in _PORT_PROTOCOLS:
        return None
    sources = _strings(rule_data.get("source_address_prefix")) + _strings(
        rule_data.get("source_address_prefixes")
    )
    world = _world(sources)
    if not world:
        return None
    ranges = _port_ranges(rule_data.get("destination_port_range")) + _port_ranges(
        rule_data.get("destination_port_ranges")
    )
    found = _admin_ports(ranges)
    return _Opening(found, world, where, label) if found else None


def _openings(change: ResourceChange) -> Iterator[_Opening]:
    kind = change.type
    if kind == "aws_security_group":
        ingress, known = change.value("ingress")
        if known and isinstance(ingress, list):
            for index in range(len(ingress)):
                found = _aws_rule(
                    change, ("ingress", index), ("cidr_blocks", "ipv6_cidr_blocks"), "protocol"
                )
                if found is not None:
                    yield _Opening(found.ports, found.sources, found.where, f" (ingress {index})")
    elif kind == "aws_security_group_rule":
        direction, known = change.value("type")
        if known and direction == "ingress":
            found = _aws_rule(change, (), ("cidr_blocks", "ipv6_cidr_blocks"), "protocol")
            if found is not None:
                yield found
    elif kind == "aws_vpc_security_group_ingress_rule":
        found = _aws_rule(change, (), ("cidr_ipv4", "cidr_ipv6"), "ip_protocol")
        if found is not None:
            yield found
    elif kind == "google_compute_firewall":
        yield from _gcp_firewall(change)
    elif kind == "azurerm_network_security_rule":
        after, known = change.value()
        if known and isinstance(after, dict) and not _any_unknown(change):
            found = _azure_rule(after, (), "")
            if found is not None:
                yield found
    elif kind == "azurerm_network_security_group":
        rules, known = change.value("security_rule")
        if known and isinstance(rules, list):
            for index, item in enumerate(rules):
                if isinstance(item, dict) and not _unknown(
                    change.change.get("after_unknown"), ("security_rule", index)
                ):
                    name = item.get("name")
                    label = f" (security_rule {name})" if isinstance(name, str) else ""
                    found = _azure_rule(item, ("security_rule", index), label)
                    if found is not None:
                        yield found


def _any_unknown(change: ResourceChange) -> bool:
    """Whether any attribute an Azure rule reads is unknown until apply."""
    marks = change.change.get("after_unknown")
    keys = (
        "direction",
        "access",
        "protocol",
        "source_address_prefix",
        "source_address_prefixes",
        "destination_port_range",
        "destination_port_ranges",
    )
    return any(_unknown(marks, (key,)) for key in keys)


@rule(
    "tf.open-admin-port",
    "Administration and data ports are not open to the internet",
    Severity.ERROR,
    rationale=(
        "SSH, RDP, database, Redis, etcd, kubelet, Kubernetes API and Odoo ports reachable from "
        "0.0.0.0/0 or ::/0 are found by internet-wide scanners within minutes and brute-forced "
        "or exploited from then on; these services belong behind a VPN, a bastion or a load "
        "balancer. Checked on AWS security groups and their rules, Google firewall rules and "
        "Azure network security rules that the plan creates or updates; a source or port "
        "unknown until apply is not guessed."
    ),
    remediation=(
        "Restrict the rule's source to the networks that need it (office, VPN, bastion or "
        "load-balancer ranges, or a security-group reference), or remove the rule; publish "
        "Odoo through the ingress (Traefik) on 443 rather than opening 8069."
    ),
    aliases=(
        "CKV_AWS_24",
        "CKV_AWS_25",
        "CKV_GCP_2",
        "CKV_GCP_3",
        "CKV_GCP_88",
        "CKV_AZURE_9",
        "CKV_AZURE_10",
    ),
)
def open_admin_port(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for change in _changes(changeset):
        if not change.writes:
            continue
        for opening in _openings(change):
            yield change.hit(
                f"{change.address}{opening.label} opens {_describe_ports(opening.ports)} to "
                f"{', '.join(sorted(set(opening.sources)))}",
                *opening.where,
            )


def _s3_acl_grants(change: ResourceChange) -> Iterator[tuple[tuple[str | int, ...], str]]:
    policies, known = change.value("access_control_policy")
    if not known or not isinstance(policies, list):
        return
    for p, policy in enumerate(policies):
        grants = policy.get("grant") if isinstance(policy, dict) else None
        for g, grant in enumerate(grants if isinstance(grants, list) else ()):
            grantees = grant.get("grantee") if isinstance(grant, dict) else None
            if isinstance(grantees, dict):
                grantees = [grantees]
            for grantee in grantees if isinstance(grantees, list) else ():
                uri = grantee.get("uri") if isinstance(grantee, dict) else None
                if isinstance(uri, str) and uri in _PUBLIC_S3_GROUPS:
                    permission = grant.get("permission")
                    shown = permission if isinstance(permission, str) else "access"
                    where = ("access_control_policy", p, "grant", g)
                    yield where, f"grants {shown} to {uri.rsplit('/', 1)[-1]}"


def _public_bucket(change: ResourceChange) -> Iterator[Hit]:
    kind = change.type
    if kind == "aws_s3_bucket_public_access_block":
        off: list[str] = []
        for key in _S3_BLOCKS:
            value, known = change.value(key)
            if known and not _is_true(value):
                off.append(key)
        if off:
            yield change.hit(
                f"{change.address} leaves {', '.join(off)} off: the bucket can be made public",
                off[0],
            )
    elif kind in ("aws_s3_bucket_acl", "aws_s3_bucket"):
        acl, known = change.value("acl")
        if known and isinstance(acl, str) and acl in _PUBLIC_S3_ACLS:
            yield change.hit(f"{change.address} sets the canned ACL {acl}", "acl")
        if kind == "aws_s3_bucket_acl":
            for where, text in _s3_acl_grants(change):
                yield change.hit(f"{change.address} {text}", *where)
    elif kind == "google_storage_bucket_iam_member":
        member, known = change.value("member")
        if known and isinstance(member, str) and member in _PUBLIC_GCP_MEMBERS:
            role, _ = change.value("role")
            shown = f" {role}" if isinstance(role, str) else ""
            yield change.hit(f"{change.address} grants{shown} to {member}", "member")
    elif kind == "google_storage_bucket_iam_binding":
        members, known = change.value("members")
        public = [m for m in _strings(members) if m in _PUBLIC_GCP_MEMBERS] if known else []
        if public:
            role, _ = change.value("role")
            shown = f" {role}" if isinstance(role, str) else ""
            yield change.hit(f"{change.address} grants{shown} to {', '.join(public)}", "members")
    elif kind in (
        "google_storage_bucket_access_control",
        "google_storage_default_object_access_control",
        "google_storage_object_access_control",
    ):
        entity, known = change.value("entity")
        if known and isinstance(entity, str) and entity in _PUBLIC_GCP_MEMBERS:
            yield change.hit(f"{change.address} grants access to {entity}", "entity")
    elif kind == "azurerm_storage_container":
        access, known = change.value("container_access_type")
        if known and access in ("blob", "container"):
            yield change.hit(
                f"{change.address} allows anonymous read access ({access})",
                "container_access_type",
            )


@rule(
    "tf.public-bucket",
    "Buckets are not public",
    Severity.ERROR,
    rationale=(
        "A public bucket publishes whatever lands in it: Odoo filestore attachments, database "
        "dumps and backups are customer data. Flagged when the plan creates or updates an S3 "
        "public access block with a setting off, an S3 canned ACL or grant for AllUsers or "
        "AuthenticatedUsers, a Google Storage IAM member or ACL for allUsers or "
        "allAuthenticatedUsers, or an Azure container with anonymous access."
    ),
    remediation=(
        "Set all four `aws_s3_bucket_public_access_block` settings to true, use the `private` "
        "ACL (or none, with object ownership BucketOwnerEnforced), grant Google Storage roles "
        'to named principals, set `container_access_type = "private"`; serve public assets '
        "through a CDN with an origin access identity instead."
    ),
    aliases=(
        "CKV_AWS_53",
        "CKV_AWS_54",
        "CKV_AWS_55",
        "CKV_AWS_56",
        "CKV_AWS_20",
        "CKV_AWS_57",
        "CKV_GCP_28",
    ),
)
def public_bucket(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for change in _changes(changeset):
        if change.writes:
            yield from _public_bucket(change)


def _public_database(change: ResourceChange) -> Iterator[Hit]:
    kind = change.type
    if kind in _PUBLIC_DB_FLAG_TYPES:
        flag, known = change.value("publicly_accessible")
        if known and _is_true(flag):
            yield change.hit(
                f"{change.address} is publicly accessible (publicly_accessible = true)",
                "publicly_accessible",
            )
    elif kind == "google_sql_database_instance":
        where = ("settings", 0, "ip_configuration", 0)
        enabled, known = change.value(*where, "ipv4_enabled")
        networks, n_known = change.value(*where, "authorized_networks")
        if not (known and n_known and _is_true(enabled) and isinstance(networks, list)):
            return
        for index, network in enumerate(networks):
            value = network.get("value") if isinstance(network, dict) else None
            if isinstance(value, str) and value.strip() in ("0.0.0.0/0", "::/0"):
                yield change.hit(
                    f"{change.address} has a public IPv4 address and authorizes {value.strip()}",
                    *where,
                    "authorized_networks",
                    index,
                )
    elif kind in _AZURE_DB_FIREWALL_TYPES:
        start, s_known = change.value("start_ip_address")
        end, e_known = change.value("end_ip_address")
        if s_known and e_known and start in _ANY_IPV4 and end == "255.255.255.255":
            yield change.hit(
                f"{change.address} allows every address ({start} to {end})", "start_ip_address"
            )


@rule(
    "tf.public-database",
    "Databases are not publicly accessible",
    Severity.ERROR,
    rationale=(
        "A database with a public endpoint is one leaked or guessed password away from every "
        "tenant's data, and exposes the server to every PostgreSQL or MySQL vulnerability "
        "found from now on. Flagged when the plan creates or updates an RDS, Redshift or "
        "Neptune instance with `publicly_accessible = true`, a Cloud SQL instance with a "
        "public IPv4 address authorizing 0.0.0.0/0, or an Azure database firewall rule "
        "allowing 0.0.0.0 to 255.255.255.255."
    ),
    remediation=(
        "Set `publicly_accessible = false` and reach the database from inside the VPC (or "
        "through a bastion or VPN); on Cloud SQL use private IP or list only the networks that "
        "need access; on Azure use private access (VNet integration) or narrow firewall rules."
    ),
    aliases=("CKV_AWS_17", "CKV_AWS_87", "CKV_AWS_102", "CKV_GCP_11", "CKV_AZURE_11"),
)
def public_database(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for change in _changes(changeset):
        if change.writes:
            yield from _public_database(change)


# --------------------------------------------------------------------------- encryption


@rule(
    "tf.encryption",
    "Data stores are encrypted at rest",
    Severity.ERROR,
    rationale=(
        "Unencrypted volumes, snapshots and database storage expose customer data to anyone "
        "who gets a snapshot shared, a disk misplaced or a backup copied; on AWS encryption "
        "cannot be turned on later without copying the data to a new resource. Flagged when "
        "the plan creates or updates an RDS instance or cluster, DocumentDB, Neptune, "
        "Redshift, EBS volume, EFS file system, ElastiCache replication group or an "
        "instance's block device with encryption explicitly false. A value unknown until "
        "apply is not reported."
    ),
    remediation=(
        "Set `storage_encrypted = true` (RDS, DocumentDB, Neptune), `encrypted = true` (EBS, "
        "EFS, Redshift, block devices) or `at_rest_encryption_enabled = true` (ElastiCache), "
        "preferably with a customer-managed `kms_key_id`; for an existing resource, restore an "
        "encrypted copy and switch over in a maintenance window."
    ),
    aliases=(
        "CKV_AWS_16",
        "CKV_AWS_96",
        "CKV_AWS_3",
        "CKV_AWS_8",
        "CKV_AWS_42",
        "CKV_AWS_29",
        "CKV_AWS_64",
        "CKV_AWS_74",
        "CKV_AWS_44",
    ),
)
def encryption(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for change in _changes(changeset):
        if not change.writes:
            continue
        for key in ENCRYPTION_SETTINGS.get(change.type, ()):
            value, known = change.value(key)
            if known and _is_false(value):
                yield change.hit(f"{change.address} is not encrypted at rest ({key} = false)", key)
        if change.type in _BLOCK_DEVICE_TYPES:
            for block in _BLOCK_DEVICES:
                devices, known = change.value(block)
                if not known or not isinstance(devices, list):
                    continue
                for index in range(len(devices)):
                    value, v_known = change.value(block, index, "encrypted")
                    if v_known and _is_false(value):
                        yield change.hit(
                            f"{change.address} has an unencrypted {block} "
                            f"({block}[{index}].encrypted = false)",
                            block,
                            index,
                            "encrypted",
                        )


@rule(
    "tf.deletion-protection",
    "Databases have deletion protection",
    Severity.ERROR,
    rationale=(
        "Deletion protection makes the provider refuse to delete a database, so a mistaken "
        "`terraform destroy`, a renamed resource or a module refactor cannot drop every "
        "tenant's data in one apply. Flagged when the plan creates or updates an RDS instance "
        "or cluster, DocumentDB or Neptune cluster, or Cloud SQL instance with deletion "
        "protection false. A value unknown until apply (computed from another resource) is "
        "not reported: changegate cannot tell, and will not guess either way. Platforms whose "
        "throw-away databases need no protection can grade this rule down in the policy config."
    ),
    remediation=(
        "Set `deletion_protection = true` (turn it off in a separate, reviewed change right "
        "before an intended delete)."
    ),
    aliases=("CKV_AWS_293", "CKV_AWS_139"),
)
def deletion_protection(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for change in _changes(changeset):
        key = DELETION_PROTECTION.get(change.type)
        if key is None or not change.writes:
            continue
        value, known = change.value(key)
        if known and _is_false(value):
            yield change.hit(f"{change.address} has no deletion protection ({key} = false)", key)


# --------------------------------------------------------------------------- summary


_SUMMARY_VERBS = (
    ("create", "creates"),
    ("update", "updates"),
    ("replace", "replaces"),
    ("delete", "deletes"),
    ("forget", "forgets"),
)


@rule(
    "tf.change-summary",
    "What a Terraform plan changes",
    Severity.INFO,
    rationale=(
        "Reviewers and the risk score need the size of an infrastructure change at a glance: "
        "how many resources a plan creates, updates, replaces and deletes. One informational "
        "finding per plan; it never fails a check."
    ),
    remediation="Nothing to fix: read the counts, and look closer at replaces and deletes.",
)
def change_summary(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document in plans(changeset):
        counts = dict.fromkeys((action for action, _ in _SUMMARY_VERBS), 0)
        for change in resource_changes(document):
            if change.action in counts:
                counts[change.action] += 1
        parts = [
            f"{verb} {counts[action]}"
            for action, verb in _SUMMARY_VERBS
            if counts[action] or action in ("create", "update", "delete")
        ]
        total = sum(counts.values())
        message = f"plan {', '.join(parts)} resources" if total else "plan changes no resources"
        yield Hit(document, ("resource_changes",), message)


RULES = (
    format_version,
    stateful_delete,
    open_admin_port,
    public_bucket,
    public_database,
    encryption,
    deletion_protection,
    change_summary,
)
