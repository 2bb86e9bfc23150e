"""Terraform plan rules: format version, stateful deletes, exposure, encryption, summary."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from changegate.adapters import policy_inputs
from changegate.domain.policy.engine import Report
from changegate.domain.policy.model import Document, Format, Severity
from changegate.domain.policy.rules import terraform
from changegate.domain.policy.rules.terraform import RULES
from tests.policy.helpers import check, rule_ids

AWS = "registry.terraform.io/hashicorp/aws"


def change(
    address: str,
    kind: str,
    actions: list[str],
    after: Any,
    *,
    before: Any = None,
    unknown: Any = None,
    module: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One resource_changes entry as `terraform show -json` writes it."""
    entry: dict[str, Any] = {"address": address}
    if module:
        entry["module_address"] = module
    entry.update(
        {
            "mode": "managed",
            "type": kind,
            "name": address.rsplit(".", 1)[-1],
            "provider_name": AWS,
            "change": {
                "actions": actions,
                "before": before,
                "after": after,
                "after_unknown": {} if unknown is None else unknown,
                "before_sensitive": {},
                "after_sensitive": {},
            },
        }
    )
    entry.update(extra)
    return entry


def plan(*changes: dict[str, Any], version: Any = "1.2", file: str = "plan.json") -> Document:
    """A plan document read by the input adapter from pretty-printed JSON, with its lines."""
    data = {
        "format_version": version,
        "terraform_version": "1.9.8",
        "planned_values": {"root_module": {}},
        "resource_changes": list(changes),
    }
    raw = json.dumps(data, indent=2).encode()
    [document] = policy_inputs.parse(raw, file)
    assert document is not None and document.format is Format.TERRAFORM_PLAN
    return document


def run(rule_id: str, *documents: Document) -> Report:
    rules = [each for each in RULES if each.info.id == rule_id]
    assert rules, rule_id
    return check(rules, list(documents))


def messages(report: Report) -> list[str]:
    return [f.message for f in report.findings]


def db(**overrides: Any) -> dict[str, Any]:
    data = {
        "identifier": "odoo-prod",
        "engine": "postgres",
        "engine_version": "16.4",
        "storage_encrypted": True,
        "deletion_protection": True,
        "publicly_accessible": False,
    }
    data.update(overrides)
    return data


def ingress(port: int, cidrs: list[str], *, protocol: str = "tcp", to: int | None = None) -> dict:
    return {
        "cidr_blocks": cidrs,
        "ipv6_cidr_blocks": [],
        "from_port": port,
        "to_port": port if to is None else to,
        "protocol": protocol,
        "security_groups": [],
        "self": False,
        "description": "",
    }


# --------------------------------------------------------------------------- documentation


def test_every_rule_is_documented_and_unique() -> None:
    ids = [each.info.id for each in RULES]
    assert len(ids) == len(set(ids))
    for each in RULES:
        info = each.info
        assert info.pack == "tf" and info.id.startswith("tf.")
        assert len(info.rationale) > 80 and len(info.remediation) > 30, info.id
        for alias in info.aliases:
            assert alias.startswith(("CKV_AWS_", "CKV_GCP_", "CKV_AZURE_")), alias


# --------------------------------------------------------------------------- format version


@pytest.mark.parametrize("version", ["2.0", "0.2", "0.1", "one", "1.x", 1.0, None, ["1.0"]])
def test_unsupported_format_version_is_an_error_and_nothing_else_reads_the_plan(
    version: Any,
) -> None:
    document = plan(
        change("aws_db_instance.odoo", "aws_db_instance", ["delete"], None, before=db()),
        version=version,
    )
    report = check(RULES, [document])
    assert rule_ids(report) == ["tf.format-version"]
    [finding] = report.findings
    assert finding.severity is Severity.ERROR
    assert "is not supported: changegate reads format 1.x" in finding.message
    assert "written by Terraform 1.9.8" in finding.message
    assert "the plan was not evaluated" in finding.message
    assert finding.line == 2  # the format_version line


def test_format_version_cannot_be_waived() -> None:
    assert terraform.format_version.info.waivable is False


@pytest.mark.parametrize("version", ["1", "1.0", "1.1", "1.2", "1.10"])
def test_supported_format_versions(version: str) -> None:
    document = plan(change("aws_s3_bucket.a", "aws_s3_bucket", ["create"], {}), version=version)
    assert terraform.supported(document)
    assert rule_ids(run("tf.format-version", document)) == []


def test_format_version_missing_from_a_plan_document() -> None:
    document = Document("plan.json", 0, 1, Format.TERRAFORM_PLAN, {"resource_changes": []})
    [finding] = run("tf.format-version", document).findings
    assert finding.message.startswith("plan format_version missing is not supported")


# --------------------------------------------------------------------------- stateful deletes


@pytest.mark.parametrize(
    ("actions", "verb"),
    [
        (["delete"], "plan deletes database"),
        (["delete", "create"], "plan replaces (destroy, then create) database"),
        (["create", "delete"], "plan replaces (create, then destroy) database"),
    ],
)
def test_stateful_delete_and_replace(actions: list[str], verb: str) -> None:
    after = None if actions == ["delete"] else db()
    document = plan(
        change("aws_s3_bucket.assets", "aws_s3_bucket", ["create"], {"bucket": "assets"}),
        change(
            "module.database.aws_db_instance.odoo",
            "aws_db_instance",
            actions,
            after,
            before=db(),
            module="module.database",
        ),
    )
    report = run("tf.stateful-delete", document)
    [finding] = report.findings
    assert finding.message.startswith(f"{verb} module.database.aws_db_instance.odoo")
    assert finding.message.endswith("requires a high-risk approval")
    assert finding.resource.kind == "aws_db_instance"
    assert finding.resource.namespace == "module.database"
    assert finding.resource.name == "module.database.aws_db_instance.odoo"
    assert finding.resource.api_version == ""
    # The line of the resource_changes[1] entry ("{" of the second change).
    assert finding.line == document.locate(("resource_changes", 1))
    assert finding.line is not None and finding.line > 10


def test_stateful_delete_names_what_forces_the_replacement_or_why() -> None:
    forced = change(
        "aws_rds_cluster.odoo",
        "aws_rds_cluster",
        ["delete", "create"],
        {},
        before={},
    )
    forced["change"]["replace_paths"] = [["engine"], ["master_username"], ["tags", 0]]
    tainted = change(
        "google_sql_database_instance.odoo",
        "google_sql_database_instance",
        ["delete", "create"],
        {},
        before={},
        action_reason="replace_because_tainted",
    )
    found = messages(run("tf.stateful-delete", plan(forced, tainted)))
    assert "forced by engine, master_username, tags[0]" in found[0]
    assert "(replace because tainted)" in found[1]


@pytest.mark.parametrize(
    "kind",
    [
        "aws_ebs_volume",
        "google_compute_disk",
        "kubernetes_persistent_volume_claim",
        "google_storage_bucket",
        "azurerm_storage_account",
        "aws_route53_zone",
        "cloudflare_zone",
        "aws_kms_key",
        "google_kms_crypto_key",
        "aws_elasticache_replication_group",
        "google_redis_instance",
        "azurerm_redis_cache",
        "azurerm_postgresql_flexible_server",
    ],
)
def test_stateful_kinds(kind: str) -> None:
    document = plan(change(f"{kind}.this", kind, ["delete"], None, before={}))
    [message] = messages(run("tf.stateful-delete", document))
    assert terraform.STATEFUL_RESOURCES[kind] in message


@pytest.mark.parametrize("actions", [["update"], ["no-op"], ["read"], ["create"], ["forget"]])
def test_stateful_changes_that_destroy_nothing(actions: list[str]) -> None:
    document = plan(change("aws_db_instance.odoo", "aws_db_instance", actions, db(), before=db()))
    assert rule_ids(run("tf.stateful-delete", document)) == []


def test_stateless_deletes_and_data_sources_pass() -> None:
    data_source = change("data.aws_db_instance.odoo", "aws_db_instance", ["delete"], None)
    data_source["mode"] = "data"
    document = plan(
        change("aws_security_group_rule.vpn", "aws_security_group_rule", ["delete"], None),
        change("helm_release.odoo", "helm_release", ["delete", "create"], {}, before={}),
        data_source,
    )
    assert rule_ids(run("tf.stateful-delete", document)) == []


def test_stateful_table_is_a_module_constant() -> None:
    assert "aws_db_instance" in terraform.STATEFUL_RESOURCES
    assert "helm_release" not in terraform.STATEFUL_RESOURCES
    with pytest.raises(TypeError):
        terraform.STATEFUL_RESOURCES["x"] = "y"  # type: ignore[index]


# --------------------------------------------------------------------------- unknown values


def test_unknown_deletion_protection_is_unknown_not_false() -> None:
    """after holds null for a value computed at apply: that must not read as false."""
    unknown = change(
        "aws_db_instance.odoo",
        "aws_db_instance",
        ["create"],
        db(deletion_protection=None, storage_encrypted=None),
        unknown={"deletion_protection": True, "storage_encrypted": True, "id": True},
    )
    known_false = change(
        "aws_db_instance.reporting",
        "aws_db_instance",
        ["create"],
        db(deletion_protection=False, storage_encrypted=False),
    )
    assert rule_ids(run("tf.deletion-protection", plan(unknown))) == []
    assert rule_ids(run("tf.encryption", plan(unknown))) == []
    assert messages(run("tf.deletion-protection", plan(unknown, known_false))) == [
        "aws_db_instance.reporting has no deletion protection (deletion_protection = false)"
    ]
    assert messages(run("tf.encryption", plan(unknown, known_false))) == [
        "aws_db_instance.reporting is not encrypted at rest (storage_encrypted = false)"
    ]


def test_a_wholly_unknown_object_is_unknown() -> None:
    document = plan(
        change("aws_db_instance.odoo", "aws_db_instance", ["create"], None, unknown=True),
        change(
            "aws_security_group.odoo",
            "aws_security_group",
            ["create"],
            {"ingress": None},
            unknown={"ingress": True},
        ),
    )
    report = check(RULES, [document])
    assert rule_ids(report) == ["tf.change-summary"]


def test_unknown_cidrs_or_ports_of_one_ingress_rule_are_not_guessed() -> None:
    after = {
        "ingress": [
            {**ingress(22, []), "cidr_blocks": None},
            {**ingress(5432, ["0.0.0.0/0"]), "from_port": None, "to_port": None},
            ingress(6379, ["0.0.0.0/0"]),
        ]
    }
    unknown = {"ingress": [{"cidr_blocks": True}, {"from_port": True, "to_port": True}, {}]}
    document = plan(
        change("aws_security_group.odoo", "aws_security_group", ["create"], after, unknown=unknown)
    )
    assert messages(run("tf.open-admin-port", document)) == [
        "aws_security_group.odoo (ingress 2) opens Redis (6379) to 0.0.0.0/0"
    ]


def test_value_reports_known_and_unknown() -> None:
    document = plan(
        change(
            "aws_db_instance.odoo",
            "aws_db_instance",
            ["create"],
            {"settings": [{"a": 1}], "tags": None},
            unknown={"settings": [{"b": True}], "endpoint": True},
        )
    )
    [resource] = terraform.resource_changes(document)
    assert resource.value("settings", 0, "a") == (1, True)
    assert resource.value("settings", 0, "b") == (None, False)
    assert resource.value("endpoint") == (None, False)
    assert resource.value("tags") == (None, True)
    assert resource.value("settings", 5, "a") == (None, True)


# --------------------------------------------------------------------------- public exposure


def test_open_admin_ports_message_line_and_resource() -> None:
    after = {"ingress": [ingress(443, ["0.0.0.0/0"]), ingress(22, ["0.0.0.0/0", "10.0.0.0/8"])]}
    document = plan(change("aws_security_group.odoo", "aws_security_group", ["create"], after))
    [finding] = run("tf.open-admin-port", document).findings
    assert finding.message == "aws_security_group.odoo (ingress 1) opens SSH (22) to 0.0.0.0/0"
    assert finding.line == document.locate(("resource_changes", 0, "change", "after", "ingress", 1))
    assert finding.resource.kind == "aws_security_group"
    assert set(finding.aliases) >= {"CKV_AWS_24", "CKV_AWS_25"}


def test_all_protocols_and_wide_ranges_open_every_admin_port() -> None:
    document = plan(
        change(
            "aws_security_group_rule.all",
            "aws_security_group_rule",
            ["create"],
            {
                "type": "ingress",
                "protocol": "-1",
                "from_port": 0,
                "to_port": 0,
                "cidr_blocks": [],
                "ipv6_cidr_blocks": ["::/0"],
            },
        ),
        change(
            "aws_vpc_security_group_ingress_rule.range",
            "aws_vpc_security_group_ingress_rule",
            ["update"],
            {"ip_protocol": "tcp", "from_port": 5000, "to_port": 7000, "cidr_ipv4": "0.0.0.0/0"},
            before={},
        ),
    )
    found = messages(run("tf.open-admin-port", document))
    assert len(found) == 2
    assert "SSH (22)" in found[0] and "Odoo (8069)" in found[0] and found[0].endswith("::/0")
    assert found[1] == (
        "aws_vpc_security_group_ingress_rule.range opens PostgreSQL (5432), Redis (6379), "
        "Kubernetes API (6443) to 0.0.0.0/0"
    )


def test_closed_or_irrelevant_rules_pass() -> None:
    document = plan(
        change(
            "aws_security_group_rule.egress",
            "aws_security_group_rule",
            ["create"],
            {
                "type": "egress",
                "protocol": "-1",
                "from_port": 0,
                "to_port": 0,
                "cidr_blocks": ["0.0.0.0/0"],
            },
        ),
        change(
            "aws_security_group.icmp",
            "aws_security_group",
            ["create"],
            {"ingress": [ingress(-1, ["0.0.0.0/0"], protocol="icmp")]},
        ),
        change(
            "aws_security_group.https",
            "aws_security_group",
            ["create"],
            {"ingress": [ingress(443, ["0.0.0.0/0"]), ingress(22, ["10.8.0.0/16"])]},
        ),
        # Already open and not changed by this plan: not this change's doing.
        change(
            "aws_security_group.legacy",
            "aws_security_group",
            ["no-op"],
            {"ingress": [ingress(22, ["0.0.0.0/0"])]},
        ),
        change(
            "aws_security_group.gone",
            "aws_security_group",
            ["delete"],
            None,
            before={"ingress": [ingress(22, ["0.0.0.0/0"])]},
        ),
    )
    assert rule_ids(run("tf.open-admin-port", document)) == []


def test_google_firewall() -> None:
    def firewall(**fields: Any) -> dict[str, Any]:
        base = {
            "direction": "INGRESS",
            "disabled": False,
            "source_ranges": ["0.0.0.0/0"],
            "allow": [{"protocol": "tcp", "ports": ["80", "443"]}],
        }
        base.update(fields)
        return base

    document = plan(
        change("google_compute_firewall.web", "google_compute_firewall", ["create"], firewall()),
        change(
            "google_compute_firewall.db",
            "google_compute_firewall",
            ["create"],
            firewall(allow=[{"protocol": "tcp", "ports": ["5000-6000"]}]),
        ),
        change(
            "google_compute_firewall.all",
            "google_compute_firewall",
            ["create"],
            firewall(allow=[{"protocol": "all", "ports": []}], direction=None),
        ),
        change(
            "google_compute_firewall.off",
            "google_compute_firewall",
            ["create"],
            firewall(allow=[{"protocol": "tcp", "ports": ["22"]}], disabled=True),
        ),
        change(
            "google_compute_firewall.out",
            "google_compute_firewall",
            ["create"],
            firewall(allow=[{"protocol": "tcp", "ports": ["22"]}], direction="EGRESS"),
        ),
        change(
            "google_compute_firewall.iap",
            "google_compute_firewall",
            ["create"],
            firewall(
                allow=[{"protocol": "tcp", "ports": ["22"]}], source_ranges=["35.235.240.0/20"]
            ),
        ),
    )
    found = messages(run("tf.open-admin-port", document))
    assert found[0] == "google_compute_firewall.db (allow 0) opens PostgreSQL (5432) to 0.0.0.0/0"
    assert found[1].startswith("google_compute_firewall.all (allow 0) opens SSH (22), ")
    assert len(found) == 2


def test_azure_network_security_rules() -> None:
    def nsr(**fields: Any) -> dict[str, Any]:
        base = {
            "direction": "Inbound",
            "access": "Allow",
            "protocol": "Tcp",
            "source_address_prefix": "*",
            "destination_port_range": "3389",
        }
        base.update(fields)
        return base

    document = plan(
        change(
            "azurerm_network_security_rule.rdp", "azurerm_network_security_rule", ["create"], nsr()
        ),
        change(
            "azurerm_network_security_rule.deny",
            "azurerm_network_security_rule",
            ["create"],
            nsr(access="Deny"),
        ),
        change(
            "azurerm_network_security_rule.office",
            "azurerm_network_security_rule",
            ["create"],
            nsr(source_address_prefix="203.0.113.0/24"),
        ),
        change(
            "azurerm_network_security_group.odoo",
            "azurerm_network_security_group",
            ["update"],
            {
                "security_rule": [
                    nsr(name="https", destination_port_range="443"),
                    nsr(
                        name="ssh",
                        source_address_prefix=None,
                        source_address_prefixes=["Internet"],
                        destination_port_range=None,
                        destination_port_ranges=["22", "8069"],
                    ),
                ]
            },
            before={},
        ),
    )
    assert messages(run("tf.open-admin-port", document)) == [
        "azurerm_network_security_rule.rdp opens RDP (3389) to *",
        "azurerm_network_security_group.odoo (security_rule ssh) opens SSH (22), Odoo (8069) "
        "to Internet",
    ]


def test_public_buckets() -> None:
    block = {
        "block_public_acls": True,
        "block_public_policy": True,
        "ignore_public_acls": True,
        "restrict_public_buckets": True,
    }
    document = plan(
        change(
            "aws_s3_bucket_public_access_block.ok",
            "aws_s3_bucket_public_access_block",
            ["create"],
            block,
        ),
        change(
            "aws_s3_bucket_public_access_block.off",
            "aws_s3_bucket_public_access_block",
            ["create"],
            {**block, "ignore_public_acls": False},
        ),
        change(
            "aws_s3_bucket_public_access_block.unknown",
            "aws_s3_bucket_public_access_block",
            ["create"],
            {**block, "block_public_acls": None},
            unknown={"block_public_acls": True},
        ),
        change("aws_s3_bucket_acl.site", "aws_s3_bucket_acl", ["create"], {"acl": "public-read"}),
        change(
            "aws_s3_bucket_acl.grant",
            "aws_s3_bucket_acl",
            ["create"],
            {
                "acl": None,
                "access_control_policy": [
                    {
                        "grant": [
                            {
                                "grantee": [
                                    {
                                        "type": "Group",
                                        "uri": "http://acs.amazonaws.com/groups/global/AllUsers",
                                    }
                                ],
                                "permission": "READ",
                            }
                        ]
                    }
                ],
            },
        ),
        change(
            "google_storage_bucket_iam_member.public",
            "google_storage_bucket_iam_member",
            ["create"],
            {"member": "allUsers", "role": "roles/storage.objectViewer"},
        ),
        change(
            "google_storage_bucket_iam_binding.auth",
            "google_storage_bucket_iam_binding",
            ["create"],
            {
                "members": ["user:a@example.com", "allAuthenticatedUsers"],
                "role": "roles/storage.objectViewer",
            },
        ),
        change(
            "azurerm_storage_container.assets",
            "azurerm_storage_container",
            ["create"],
            {"container_access_type": "blob"},
        ),
    )
    assert messages(run("tf.public-bucket", document)) == [
        "aws_s3_bucket_public_access_block.off leaves ignore_public_acls off: the bucket can "
        "be made public",
        "aws_s3_bucket_acl.site sets the canned ACL public-read",
        "aws_s3_bucket_acl.grant grants READ to AllUsers",
        "google_storage_bucket_iam_member.public grants roles/storage.objectViewer to allUsers",
        "google_storage_bucket_iam_binding.auth grants roles/storage.objectViewer to "
        "allAuthenticatedUsers",
        "azurerm_storage_container.assets allows anonymous read access (blob)",
    ]


def test_public_databases() -> None:
    ip = {
        "ipv4_enabled": True,
        "authorized_networks": [
            {"name": "office", "value": "203.0.113.0/24"},
            {"name": "all", "value": "0.0.0.0/0"},
        ],
    }
    document = plan(
        change(
            "aws_db_instance.odoo",
            "aws_db_instance",
            ["update"],
            db(publicly_accessible=True),
            before=db(),
        ),
        change("aws_db_instance.private", "aws_db_instance", ["create"], db()),
        change(
            "google_sql_database_instance.odoo",
            "google_sql_database_instance",
            ["create"],
            {"settings": [{"ip_configuration": [ip]}]},
        ),
        change(
            "google_sql_database_instance.private",
            "google_sql_database_instance",
            ["create"],
            {"settings": [{"ip_configuration": [{**ip, "ipv4_enabled": False}]}]},
        ),
        change(
            "azurerm_postgresql_flexible_server_firewall_rule.all",
            "azurerm_postgresql_flexible_server_firewall_rule",
            ["create"],
            {"start_ip_address": "0.0.0.0", "end_ip_address": "255.255.255.255"},
        ),
        change(
            "azurerm_postgresql_flexible_server_firewall_rule.azure",
            "azurerm_postgresql_flexible_server_firewall_rule",
            ["create"],
            {"start_ip_address": "0.0.0.0", "end_ip_address": "0.0.0.0"},
        ),
    )
    assert messages(run("tf.public-database", document)) == [
        "aws_db_instance.odoo is publicly accessible (publicly_accessible = true)",
        "google_sql_database_instance.odoo has a public IPv4 address and authorizes 0.0.0.0/0",
        "azurerm_postgresql_flexible_server_firewall_rule.all allows every address (0.0.0.0 to "
        "255.255.255.255)",
    ]


# --------------------------------------------------------------------------- encryption


def test_encryption_on_volumes_and_block_devices_being_written() -> None:
    document = plan(
        change("aws_ebs_volume.data", "aws_ebs_volume", ["create"], {"encrypted": False}),
        change(
            "aws_instance.odoo",
            "aws_instance",
            ["update"],
            {
                "root_block_device": [{"encrypted": False}],
                "ebs_block_device": [{"encrypted": True}],
            },
            before={},
        ),
        change(
            "aws_elasticache_replication_group.sessions",
            "aws_elasticache_replication_group",
            ["create"],
            {"at_rest_encryption_enabled": "false"},
        ),
        change(
            "aws_ebs_volume.old", "aws_ebs_volume", ["delete"], None, before={"encrypted": False}
        ),
        change("aws_ebs_volume.absent", "aws_ebs_volume", ["create"], {"size": 10}),
    )
    assert messages(run("tf.encryption", document)) == [
        "aws_ebs_volume.data is not encrypted at rest (encrypted = false)",
        "aws_instance.odoo has an unencrypted root_block_device "
        "(root_block_device[0].encrypted = false)",
        "aws_elasticache_replication_group.sessions is not encrypted at rest "
        "(at_rest_encryption_enabled = false)",
    ]


def test_deletion_protection_kinds_and_updates() -> None:
    document = plan(
        change(
            "aws_rds_cluster.odoo",
            "aws_rds_cluster",
            ["update"],
            {"deletion_protection": False},
            before={"deletion_protection": True},
        ),
        change(
            "google_sql_database_instance.odoo",
            "google_sql_database_instance",
            ["create"],
            {"deletion_protection": False},
        ),
        change(
            "aws_db_instance.gone",
            "aws_db_instance",
            ["delete"],
            None,
            before=db(deletion_protection=False),
        ),
    )
    report = run("tf.deletion-protection", document)
    assert [f.resource.name for f in report.findings] == [
        "aws_rds_cluster.odoo",
        "google_sql_database_instance.odoo",
    ]
    assert report.findings[0].line == document.locate(
        ("resource_changes", 0, "change", "after", "deletion_protection")
    )


# --------------------------------------------------------------------------- summary


def test_change_summary_counts_every_kind_of_action() -> None:
    def one(name: str, actions: list[str]) -> dict[str, Any]:
        return change(f"aws_s3_bucket.{name}", "aws_s3_bucket", actions, {}, before={})

    document = plan(
        one("a", ["create"]),
        one("b", ["create"]),
        one("c", ["create"]),
        one("d", ["update"]),
        one("e", ["delete", "create"]),
        one("f", ["delete"]),
        one("g", ["delete"]),
        one("h", ["no-op"]),
        one("i", ["read"]),
    )
    [finding] = run("tf.change-summary", document).findings
    assert finding.severity is Severity.INFO
    assert finding.message == "plan creates 3, updates 1, replaces 1, deletes 2 resources"
    assert finding.line == document.locate(("resource_changes",))
    assert not finding.blocking


def test_change_summary_of_an_empty_plan() -> None:
    document = plan(change("aws_s3_bucket.a", "aws_s3_bucket", ["no-op"], {}, before={}))
    assert messages(run("tf.change-summary", document)) == ["plan changes no resources"]


def test_one_summary_per_plan() -> None:
    first = plan(change("aws_s3_bucket.a", "aws_s3_bucket", ["create"], {}), file="a.json")
    second = plan(change("aws_s3_bucket.a", "aws_s3_bucket", ["forget"], {}), file="b.json")
    assert messages(run("tf.change-summary", first, second)) == [
        "plan creates 1, updates 0, deletes 0 resources",
        "plan creates 0, updates 0, deletes 0, forgets 1 resources",
    ]


# --------------------------------------------------------------------------- odd input

_ODD_VALUES: list[Any] = [None, True, 0, -1, 1.5, "x", "", [], {}, [None], [1, "a"], {"a": None}]


def _odd_plans() -> list[dict[str, Any]]:
    base = {
        "format_version": "1.2",
        "resource_changes": [
            change(
                "aws_security_group.odoo",
                "aws_security_group",
                ["create"],
                {"ingress": [ingress(22, ["0.0.0.0/0"])]},
            ),
            change(
                "google_compute_firewall.f",
                "google_compute_firewall",
                ["create"],
                {"source_ranges": ["0.0.0.0/0"], "allow": [{"protocol": "tcp", "ports": ["22"]}]},
            ),
            change(
                "azurerm_network_security_group.n",
                "azurerm_network_security_group",
                ["create"],
                {"security_rule": [{"direction": "Inbound"}]},
            ),
            change(
                "aws_s3_bucket_acl.a",
                "aws_s3_bucket_acl",
                ["create"],
                {"access_control_policy": [{"grant": [{"grantee": [{"uri": "x"}]}]}]},
            ),
            change(
                "google_sql_database_instance.s",
                "google_sql_database_instance",
                ["create"],
                {
                    "settings": [
                        {"ip_configuration": [{"ipv4_enabled": True, "authorized_networks": [{}]}]}
                    ]
                },
            ),
            change("aws_instance.i", "aws_instance", ["create"], {"root_block_device": [{}]}),
            change("aws_db_instance.d", "aws_db_instance", ["delete", "create"], db(), before=db()),
        ],
    }
    plans: list[dict[str, Any]] = []
    paths: list[tuple[Any, ...]] = [
        ("resource_changes",),
        ("resource_changes", 0),
        ("resource_changes", 0, "change"),
        ("resource_changes", 0, "change", "actions"),
        ("resource_changes", 0, "change", "after"),
        ("resource_changes", 0, "change", "after_unknown"),
        ("resource_changes", 0, "change", "after", "ingress"),
        ("resource_changes", 0, "change", "after", "ingress", 0),
        ("resource_changes", 0, "change", "after", "ingress", 0, "from_port"),
        ("resource_changes", 0, "change", "after", "ingress", 0, "cidr_blocks"),
        ("resource_changes", 0, "change", "after", "ingress", 0, "protocol"),
        ("resource_changes", 1, "change", "after", "allow"),
        ("resource_changes", 1, "change", "after", "allow", 0, "ports"),
        ("resource_changes", 1, "change", "after", "source_ranges"),
        ("resource_changes", 2, "change", "after", "security_rule", 0),
        ("resource_changes", 3, "change", "after", "access_control_policy", 0, "grant"),
        ("resource_changes", 4, "change", "after", "settings"),
        ("resource_changes", 4, "change", "after", "settings", 0, "ip_configuration"),
        ("resource_changes", 5, "change", "after", "root_block_device"),
        ("resource_changes", 6, "change", "replace_paths"),
        ("resource_changes", 6, "type"),
        ("resource_changes", 6, "address"),
        ("resource_changes", 6, "mode"),
    ]
    for path in paths:
        for value in _ODD_VALUES:
            data = copy.deepcopy(base)
            target: Any = data
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
            plans.append(data)
    return plans


def test_odd_types_never_raise() -> None:
    documents = [
        Document(f"odd-{n}.json", 0, 1, Format.TERRAFORM_PLAN, data)
        for n, data in enumerate(_odd_plans())
    ]
    documents += [
        Document("list.json", 0, 1, Format.TERRAFORM_PLAN, ["format_version"]),
        Document("text.json", 0, 1, Format.TERRAFORM_PLAN, "plan"),
    ]
    report = check(RULES, documents)
    # Garbage in never raises; the plans still summarised are the ones that could be read.
    assert report.summary.rules_run == len(RULES)
    assert "tf.format-version" in rule_ids(report)
