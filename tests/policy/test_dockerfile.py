"""The Dockerfile pack: USER, HEALTHCHECK, ADD of remote content, base image pins, apt-get."""

from __future__ import annotations

from textwrap import dedent

import pytest

from changegate.adapters import policy_inputs
from changegate.domain.policy.model import Document, Format, Severity
from changegate.domain.policy.rules import dockerfile
from changegate.domain.policy.rules.dockerfile import expand, stages
from tests.policy.helpers import check, rule_ids

DIGEST = "sha256:" + "a" * 64


def parse(text: str, name: str = "Dockerfile") -> list[Document]:
    documents = policy_inputs.parse(dedent(text).lstrip().encode(), name)
    return [d for d in documents if d is not None]


GOOD = f"""
    # syntax=docker/dockerfile:1.7
    ARG PYTHON=3.11.9-slim-bookworm
    FROM python:${{PYTHON}}@{DIGEST} AS build
    RUN apt-get update && apt-get install -y --no-install-recommends build-essential \\
        && rm -rf /var/lib/apt/lists/*
    COPY requirements.txt /src/
    RUN pip wheel -r /src/requirements.txt -w /wheels

    FROM registry.example.com/odoo:17.0@{DIGEST}
    COPY --from=build /wheels /wheels
    ADD --checksum=sha256:{"b" * 64} https://example.com/addon.tar.gz /opt/addons/
    USER odoo
    HEALTHCHECK --interval=30s CMD curl -fsS http://localhost:8069/web/health || exit 1
"""


def test_a_good_dockerfile_passes_every_rule() -> None:
    report = check(dockerfile.RULES, parse(GOOD))
    assert rule_ids(report) == []


# --------------------------------------------------------------------------- parsing helpers


def test_expand_with_defaults_and_operators() -> None:
    values: dict[str, str | None] = {"A": "1", "EMPTY": "", "NONE": None}
    assert expand("x${A}y$A", values).text == "x1y1"
    assert expand("${EMPTY:-d}/${NONE:-d}/${A:-d}", values).text == "d/d/1"
    assert expand("${A:+set}/${EMPTY:+set}/${NONE:+set}", values).text == "set//"
    missing = expand("${NONE}/$UNKNOWN/${A}", values)
    assert missing.missing == ("NONE", "UNKNOWN")


def test_stages_follow_aliases_and_env() -> None:
    (document,) = parse(
        """
        ARG BASE=debian:12
        FROM ${BASE} AS Base
        ENV APP_USER=app
        USER $APP_USER
        FROM base
        RUN true
        """
    )
    first, second = stages(document)
    assert first.image.text == "debian:12"
    assert first.alias == "base"
    assert second.base is first  # stage names are case-insensitive
    assert second.chain() == [second, first]
    assert first.users[0].expanded.text == "app"


# --------------------------------------------------------------------------- non-root USER


@pytest.mark.parametrize("user", ["root", "0", "root:root", "0:0", "00", "${U}"])
def test_root_user_fails(user: str) -> None:
    documents = parse(
        f"""
        FROM registry.example.com/odoo:17.0
        ARG U=root
        USER odoo
        USER {user}
        """
    )
    report = check(dockerfile.non_root_user, documents)
    assert rule_ids(report) == ["dockerfile.non-root-user"]
    finding = report.findings[0]
    assert finding.line == 4
    assert finding.message.startswith(f"the final stage runs as root: USER {user}")
    assert finding.resource.kind == "dockerfile"
    assert finding.resource.name == "Dockerfile"
    assert "CKV_DOCKER_3" in finding.aliases and "DS002" in finding.aliases


def test_missing_user_fails_at_the_final_from() -> None:
    documents = parse(
        """
        FROM python:3.11 AS build
        USER builder
        FROM registry.example.com/odoo:17.0
        CMD ["odoo"]
        """
    )
    report = check(dockerfile.non_root_user, documents)
    assert [(f.line, f.message) for f in report.findings] == [
        (
            3,
            "the final stage sets no USER, so the container runs as the base image's user "
            "(root unless the base image sets another)",
        )
    ]


def test_user_is_inherited_from_an_earlier_stage() -> None:
    documents = parse(
        """
        FROM registry.example.com/odoo:17.0 AS base
        USER odoo
        FROM base
        RUN echo done
        """
    )
    assert rule_ids(check(dockerfile.non_root_user, documents)) == []


def test_only_the_final_stage_counts() -> None:
    documents = parse(
        """
        FROM python:3.11 AS build
        USER root
        FROM registry.example.com/odoo:17.0
        USER 101
        """
    )
    assert rule_ids(check(dockerfile.non_root_user, documents)) == []


def test_user_from_a_build_argument_without_default_is_not_guessed() -> None:
    documents = parse(
        """
        FROM registry.example.com/odoo:17.0
        ARG APP_UID
        USER ${APP_UID}
        """
    )
    report = check(dockerfile.non_root_user, documents)
    assert report.findings[0].severity is Severity.INFO
    assert "cannot be checked" in report.findings[0].message
    assert report.passed


def test_global_arg_redeclared_in_the_stage_resolves_user() -> None:
    documents = parse(
        """
        ARG APP_USER=root
        FROM registry.example.com/odoo:17.0
        ARG APP_USER
        USER $APP_USER
        """
    )
    report = check(dockerfile.non_root_user, documents)
    assert report.findings[0].message == "the final stage runs as root: USER $APP_USER (root)"


# --------------------------------------------------------------------------- HEALTHCHECK


def test_healthcheck_missing_is_information() -> None:
    documents = parse("FROM registry.example.com/odoo:17.0\nUSER odoo\n")
    report = check(dockerfile.healthcheck, documents)
    assert rule_ids(report) == ["dockerfile.healthcheck"]
    assert report.findings[0].severity is Severity.INFO
    assert report.passed
    assert set(report.findings[0].aliases) == {"CKV_DOCKER_2", "DS026"}


def test_healthcheck_none_disables_it() -> None:
    documents = parse(
        """
        FROM registry.example.com/odoo:17.0 AS base
        HEALTHCHECK CMD true
        FROM base
        HEALTHCHECK NONE
        """
    )
    report = check(dockerfile.healthcheck, documents)
    assert [(f.line, f.message) for f in report.findings] == [
        (4, "the final stage disables the health check (HEALTHCHECK NONE)")
    ]


def test_healthcheck_inherited_from_an_earlier_stage() -> None:
    documents = parse(
        """
        FROM registry.example.com/odoo:17.0 AS base
        HEALTHCHECK CMD curl -f http://localhost:8069/web/health
        FROM base
        """
    )
    assert rule_ids(check(dockerfile.healthcheck, documents)) == []


# --------------------------------------------------------------------------- ADD


@pytest.mark.parametrize(
    ("instruction", "message"),
    [
        (
            "ADD https://example.com/addon.tar.gz /opt/",
            "ADD downloads https://example.com/addon.tar.gz without verifying a checksum",
        ),
        (
            'ADD ["http://example.com/a.zip", "/opt/"]',
            "ADD downloads http://example.com/a.zip without verifying a checksum",
        ),
        (
            "ADD --chown=odoo https://github.com/acme/addons.git#main /opt/addons",
            "ADD fetches git source https://github.com/acme/addons.git#main without pinning "
            "a commit",
        ),
        (
            "ADD https://github.com/acme/addons.git?ref=v1 /opt/addons",
            "ADD fetches git source https://github.com/acme/addons.git?ref=v1 without pinning "
            "a commit",
        ),
        (
            "ADD git@github.com:acme/addons.git /opt/addons",
            "ADD fetches git source git@github.com:acme/addons.git without pinning a commit",
        ),
    ],
)
def test_add_of_unverified_remote_content_fails(instruction: str, message: str) -> None:
    documents = parse(f"FROM registry.example.com/odoo:17.0\n{instruction}\n")
    report = check(dockerfile.add_remote, documents)
    assert [(f.line, f.message) for f in report.findings] == [(2, message)]


@pytest.mark.parametrize(
    "instruction",
    [
        "ADD addons.tar.gz /opt/",
        f"ADD --checksum=sha256:{'c' * 64} https://example.com/addon.tar.gz /opt/",
        f"ADD https://github.com/acme/addons.git#{'d' * 40} /opt/addons",
        f"ADD https://github.com/acme/addons.git#{'d' * 40}:sub /opt/addons",
        f"ADD https://github.com/acme/addons.git?ref=v1&commit={'e' * 40} /opt/addons",
        "ADD",
        "ADD [broken json",
        "ADD [1, 2]",
    ],
)
def test_add_of_local_or_verified_content_passes(instruction: str) -> None:
    documents = parse(f"FROM registry.example.com/odoo:17.0\n{instruction}\n")
    assert rule_ids(check(dockerfile.add_remote, documents)) == []


# --------------------------------------------------------------------------- base images


@pytest.mark.parametrize(
    ("source", "message", "severity"),
    [
        ("FROM odoo", "FROM odoo has no tag (Docker pulls latest)", Severity.WARNING),
        ("FROM odoo:latest AS run", "FROM odoo:latest uses the latest tag", Severity.WARNING),
        (
            "ARG BASE=odoo:latest\nFROM ${BASE}",
            "FROM ${BASE} (odoo:latest with the ARG defaults) uses the latest tag",
            Severity.WARNING,
        ),
        (
            "ARG BASE\nFROM $BASE",
            "FROM $BASE depends on build arguments without a default (BASE): its pin cannot "
            "be checked",
            Severity.INFO,
        ),
        (
            "FROM --platform=linux/amd64 localhost:5000/odoo",
            "FROM localhost:5000/odoo has no tag (Docker pulls latest)",
            Severity.WARNING,
        ),
    ],
)
def test_base_image_tag(source: str, message: str, severity: Severity) -> None:
    report = check(dockerfile.base_image_tag, parse(source + "\n"))
    assert [(f.message, f.severity) for f in report.findings] == [(message, severity)]
    assert report.findings[0].line == source.count("\n") + 1


@pytest.mark.parametrize(
    "source",
    [
        "FROM scratch",
        "FROM odoo:17.0",
        f"FROM odoo@{DIGEST}",
        "FROM odoo:17.0 AS build\nFROM build",
        "ARG V=17.0\nFROM odoo:${V}",
        "ARG V\nFROM odoo:${V:-17.0}",
    ],
)
def test_base_image_tag_passes(source: str) -> None:
    assert rule_ids(check(dockerfile.base_image_tag, parse(source + "\n"))) == []


def test_base_image_digest_is_information_for_tag_only_pins() -> None:
    documents = parse(
        f"""
        FROM python:3.11 AS build
        FROM odoo:latest AS other
        FROM registry.example.com/odoo:17.0@{DIGEST}
        FROM registry.example.com/odoo:17.0@sha256:bad
        FROM build
        """
    )
    report = check(dockerfile.base_image_digest, documents)
    assert [(f.line, f.message, f.severity) for f in report.findings] == [
        (1, "FROM python:3.11 is pinned by tag only (no digest)", Severity.INFO),
        (
            4,
            "FROM registry.example.com/odoo:17.0@sha256:bad is pinned by tag only "
            "(an invalid digest)",
            Severity.INFO,
        ),
    ]


# --------------------------------------------------------------------------- apt-get


def test_apt_get_without_no_install_recommends() -> None:
    documents = parse(
        """
        FROM debian:12
        RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*
        RUN apt-get update && apt-get -y install --no-install-recommends curl
        RUN apt-get -o APT::Install-Recommends=false install -y curl
        RUN apt-get remove -y curl; echo apt-get install is mentioned only
        RUN set -eux; DEBIAN_FRONTEND=noninteractive /usr/bin/apt-get install -y git
        RUN pip install odoo
        """
    )
    report = check(dockerfile.apt_no_recommends, documents)
    assert [(f.line, f.message) for f in report.findings] == [
        (2, "apt-get install without --no-install-recommends: apt-get install -y curl"),
        (
            6,
            "apt-get install without --no-install-recommends: "
            "DEBIAN_FRONTEND=noninteractive /usr/bin/apt-get install -y git",
        ),
    ]
    assert report.findings[0].aliases == ("DS029",)


# --------------------------------------------------------------------------- odd input


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"instructions": "FROM x"},
        {"instructions": [None, 1, {"instruction": 2, "value": []}, {"instruction": "USER"}]},
        {"instructions": [{"instruction": "FROM", "value": ""}]},
        {"instructions": [{"instruction": "USER", "value": "root"}]},
    ],
)
def test_odd_data_never_raises(data: object) -> None:
    document = Document("Dockerfile", 0, 1, Format.DOCKERFILE, data)
    check(dockerfile.RULES, [document])


def test_rules_are_documented() -> None:
    for each in dockerfile.RULES:
        info = each.info
        assert info.pack == "dockerfile"
        assert info.rationale and info.remediation
