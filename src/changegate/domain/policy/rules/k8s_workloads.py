"""Kubernetes workload security: the `k8s` rules about pods, their containers and manifests.

The rules read `changeset.workloads` (Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets,
ReplicationControllers, Jobs and CronJobs, init containers included where the setting applies
to them) and, for the manifest-level rules (removed apiVersions, plain Secrets, the default
namespace), every Kubernetes object of the change.

Severities follow one principle. An *error* is what the Pod Security Standards forbid (the
baseline and restricted profiles a hardened cluster enforces at admission: the apply fails
there, and elsewhere it is a known path to the node), a secret in plain text, an object put
where the tenant guardrails do not reach (the default namespace), or a manifest the API server
rejects (removed apiVersions, a selector that does not match its template). A *warning* is a
hardening or reliability practice that teams may have reasons to skip (read-only root
filesystem, requests and limits, probes, service-account tokens). *Info* is for trade-offs a
reviewer should see but that many good teams choose differently (CPU limits, secrets passed as
environment variables through `secretKeyRef`). The policy config can grade any rule
differently (`rules: {k8s.cpu-limit: {severity: warning}}`).

Digest pinning and the registry allow-list are the images pack's (`image.digest`,
`image.registry`); replicas, disruption budgets, spreading, NetworkPolicies, Services and
Ingresses and the tenant-namespace guardrails are the `k8s_network` module's.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from typing import Any

from changegate.domain.policy.changeset import (
    ChangeSet,
    CheckContext,
    Container,
    Workload,
    selector_matches,
)
from changegate.domain.policy.model import Document, Hit, Path, Severity, dig, rule
from changegate.domain.policy.rules.images import parse_reference

# ---------------------------------------------------------------------------------------------
# Shared helpers: every value may be of any type, so each read checks what it got.


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    """An integer as YAML gives it (never a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _what(container: Container) -> str:
    """`container odoo`, `init container migrate`, `container #2` when it has no name."""
    kind = "init container" if container.init else "container"
    name = container.name or f"#{container.path[-1]}"
    return f"{kind} {name}"


def _security(container: Container) -> dict[str, Any]:
    return _dict(container.data.get("securityContext"))


def _pod_security(workload: Workload) -> dict[str, Any]:
    return _dict(workload.pod_spec.get("securityContext"))


def _pod_security_path(workload: Workload) -> Path:
    return (*workload.pod_path, "securityContext")


def _effective(workload: Workload, container: Container, key: str) -> tuple[Any, Path]:
    """A securityContext setting the container inherits from the pod unless it sets its own."""
    own = _security(container)
    if own.get(key) is not None:
        return own[key], (*container.path, "securityContext", key)
    return _pod_security(workload).get(key), (*_pod_security_path(workload), key)


def _windows(workload: Workload) -> bool:
    """Windows pods: the Linux-only settings (seccomp, capabilities, users) do not apply."""
    return bool(dig(workload.pod_spec, ("os", "name")) == "windows")


def _hit(workload: Workload, path: Path, message: str, container: Container | None = None) -> Hit:
    return Hit(workload.document, path, message, container=container.name if container else "")


def _where(document: Document) -> str:
    """`Deployment tenant-acme/odoo` for messages about a whole object."""
    return document.resource().label()


# ---------------------------------------------------------------------------------------------
# Resources


def _quantity_set(container: Container, section: str, name: str) -> bool:
    value = dig(container.data, ("resources", section, name))
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float)


def _missing_resource(changeset: ChangeSet, section: str, name: str, label: str) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for container in workload.containers:
            if not _quantity_set(container, section, name):
                yield _hit(
                    workload,
                    (*container.path, "resources", section, name),
                    f"{_what(container)} sets no {label} (resources.{section}.{name})",
                    container,
                )


@rule(
    "k8s.cpu-request",
    "Containers request CPU",
    Severity.WARNING,
    rationale=(
        "The scheduler places pods by their requests and the kernel shares a busy node's CPU "
        "in proportion to them; a container without a CPU request is scheduled as if it "
        "needed nothing and is the first to starve when a neighbour (another tenant's Odoo) "
        "gets busy. A namespace LimitRange can fill in a default, but the manifest is where a "
        "reviewer sees what the workload needs."
    ),
    remediation=(
        "Set resources.requests.cpu on every container and init container to what it uses "
        "under normal load (e.g. `cpu: 250m`), measured from its metrics."
    ),
    aliases=(
        "CKV_K8S_10",
        "KSV015",
        "kube-score:container-resources",
        "kube-linter:unset-cpu-requirements",
        "polaris:cpuRequestsMissing",
    ),
)
def cpu_request(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return _missing_resource(changeset, "requests", "cpu", "CPU request")


@rule(
    "k8s.memory-request",
    "Containers request memory",
    Severity.WARNING,
    rationale=(
        "Memory requests decide where pods fit and which pods the kubelet evicts first under "
        "memory pressure: a container without one is packed onto nodes that cannot hold it "
        "and is evicted before its well-behaved neighbours."
    ),
    remediation=(
        "Set resources.requests.memory on every container and init container to its working "
        "set under normal load (e.g. `memory: 512Mi`)."
    ),
    aliases=(
        "CKV_K8S_12",
        "KSV016",
        "kube-score:container-resources",
        "polaris:memoryRequestsMissing",
    ),
)
def memory_request(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return _missing_resource(changeset, "requests", "memory", "memory request")


@rule(
    "k8s.memory-limit",
    "Containers limit memory",
    Severity.WARNING,
    rationale=(
        "Memory is not compressible: a container without a limit that leaks (an Odoo worker "
        "rendering a huge report, a module upgrade in an init container) grows until the node "
        "runs short and the kernel's OOM killer or the kubelet's evictions hit other tenants' "
        "pods. With a limit only the offending container is OOM-killed and restarted."
    ),
    remediation=(
        "Set resources.limits.memory on every container and init container, at or somewhat "
        "above its request (equal to the request gives the Guaranteed QoS class)."
    ),
    aliases=(
        "CKV_K8S_13",
        "KSV018",
        "kube-score:container-resources",
        "kube-linter:unset-memory-requirements",
        "polaris:memoryLimitsMissing",
    ),
)
def memory_limit(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return _missing_resource(changeset, "limits", "memory", "memory limit")


@rule(
    "k8s.cpu-limit",
    "Containers limit CPU (informational)",
    Severity.INFO,
    rationale=(
        "Reported for visibility only. CPU is compressible: with requests set, a busy node "
        "already shares CPU in proportion to them, while a CPU limit throttles a container "
        "through CFS quotas even when the node is idle, which shows up as latency spikes "
        "(Odoo workers are bursty). Many teams rightly drop CPU limits; teams that want them "
        "(strict per-tenant cost control, Guaranteed QoS) can grade this rule up in the "
        "policy config."
    ),
    remediation=(
        "If your platform wants CPU limits, set resources.limits.cpu (at least the request); "
        "otherwise leave it out and keep CPU requests accurate."
    ),
    aliases=("CKV_K8S_11", "KSV011", "kube-score:container-resources", "polaris:cpuLimitsMissing"),
)
def cpu_limit(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return _missing_resource(changeset, "limits", "cpu", "CPU limit")


# ---------------------------------------------------------------------------------------------
# Probes


_HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")


def _named_ports(container: Container) -> dict[str, int]:
    ports: dict[str, int] = {}
    for item in _list(container.data.get("ports")):
        port = _dict(item)
        name, number = port.get("name"), _int(port.get("containerPort"))
        if isinstance(name, str) and number is not None:
            ports[name] = number
    return ports


def _port(value: Any, named: Mapping[str, int]) -> Any:
    """A probe's port as a number when it can be told (named ports resolved)."""
    if isinstance(value, str):
        if value in named:
            return named[value]
        if value.isdigit():
            return int(value)
    return value


def _handler(probe: dict[str, Any], named: Mapping[str, int]) -> dict[str, Any] | None:
    """What a probe does, normalised for comparison; None when it has no handler."""
    for kind in _HANDLERS:
        spec = probe.get(kind)
        if not isinstance(spec, dict):
            continue
        if kind == "httpGet":
            return {
                "kind": kind,
                "port": _port(spec.get("port"), named),
                "path": spec.get("path") or "/",
                "host": spec.get("host") or "",
                "scheme": str(spec.get("scheme") or "HTTP").upper(),
                "headers": spec.get("httpHeaders") or [],
            }
        if kind == "tcpSocket":
            return {
                "kind": kind,
                "port": _port(spec.get("port"), named),
                "host": spec.get("host") or "",
            }
        if kind == "grpc":
            return {
                "kind": kind,
                "port": _port(spec.get("port"), named),
                "service": spec.get("service") or "",
            }
        return {"kind": kind, "command": spec.get("command")}
    return None


def _describe(handler: Mapping[str, Any]) -> str:
    kind = handler["kind"]
    if kind == "httpGet":
        return f"GET {handler['path']} on port {handler['port']}"
    if kind == "tcpSocket":
        return f"a TCP connection to port {handler['port']}"
    if kind == "grpc":
        return f"the gRPC health check on port {handler['port']}"
    command = handler["command"]
    if isinstance(command, list):
        return "the command `" + " ".join(str(part) for part in command) + "`"
    return "the same exec command"


def _missing_probe(changeset: ChangeSet, key: str) -> Iterator[Hit]:
    for workload in changeset.workloads:
        if not workload.serving:
            continue
        for container in workload.containers:
            if container.init:
                continue
            probe = container.data.get(key)
            if not isinstance(probe, dict) or not probe:
                yield _hit(
                    workload, (*container.path, key), f"{_what(container)} has no {key}", container
                )
            elif _handler(probe, _named_ports(container)) is None:
                yield _hit(
                    workload,
                    (*container.path, key),
                    f"{_what(container)} has a {key} without a handler "
                    "(httpGet, tcpSocket, exec or grpc)",
                    container,
                )


@rule(
    "k8s.readiness-probe",
    "Serving containers have a readiness probe",
    Severity.WARNING,
    rationale=(
        "Without a readiness probe a pod receives traffic as soon as its process starts, "
        "before Odoo has loaded its registry, and a rolling update replaces working pods with "
        "ones that answer 502: the rollout cannot tell a broken version from a good one. "
        "Checked on the containers of Deployments, StatefulSets, DaemonSets and ReplicaSets."
    ),
    remediation=(
        "Add a readinessProbe that checks the container can serve a request (for Odoo, "
        "`httpGet: {path: /web/health, port: 8069}`) with a short period (5-10 s)."
    ),
    aliases=(
        "CKV_K8S_9",
        "kube-score:pod-probes",
        "kube-linter:no-readiness-probe",
        "polaris:readinessProbeMissing",
    ),
)
def readiness_probe(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return _missing_probe(changeset, "readinessProbe")


@rule(
    "k8s.liveness-probe",
    "Serving containers have a liveness probe",
    Severity.WARNING,
    rationale=(
        "A liveness probe lets the kubelet restart a container that is deadlocked or wedged "
        "but has not exited; without one a stuck worker holds its share of traffic until "
        "someone notices. It must check only that the process is alive (no database or "
        "downstream calls), or it restarts healthy pods during an outage elsewhere."
    ),
    remediation=(
        "Add a livenessProbe that is cheap and local (a TCP check of the serving port, or an "
        "endpoint that does not touch the database) with a generous failureThreshold."
    ),
    aliases=(
        "CKV_K8S_8",
        "kube-score:pod-probes",
        "kube-linter:no-liveness-probe",
        "polaris:livenessProbeMissing",
    ),
)
def liveness_probe(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return _missing_probe(changeset, "livenessProbe")


@rule(
    "k8s.probes-identical",
    "Liveness and readiness probes differ",
    Severity.WARNING,
    rationale=(
        "Readiness answers 'can this pod take traffic now', liveness 'is this process beyond "
        "saving'. When both run the same check, a pod that is merely busy (every Odoo worker "
        "occupied, a slow database) fails readiness and then liveness, and is killed; its "
        "traffic moves to the other pods, which in turn fail, and the restarts cascade into "
        "an outage. A longer liveness threshold only delays this under sustained load, so "
        "probes are compared by what they check (handler, port, path, command), not by timing."
    ),
    remediation=(
        "Give liveness a different, cheaper check than readiness: e.g. readiness "
        "`httpGet /web/health` and liveness `tcpSocket` on the same port, or a dedicated "
        "endpoint that only proves the process responds."
    ),
    aliases=("kube-score:pod-probes-identical",),
)
def probes_identical(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        if not workload.serving:
            continue
        for container in workload.containers:
            if container.init:
                continue
            liveness = container.data.get("livenessProbe")
            readiness = container.data.get("readinessProbe")
            if not isinstance(liveness, dict) or not isinstance(readiness, dict):
                continue
            named = _named_ports(container)
            handler = _handler(liveness, named)
            if handler is not None and handler == _handler(readiness, named):
                yield _hit(
                    workload,
                    (*container.path, "livenessProbe"),
                    f"{_what(container)} uses the same check for liveness and readiness "
                    f"({_describe(handler)})",
                    container,
                )


# ---------------------------------------------------------------------------------------------
# Images


@rule(
    "k8s.image-tag",
    "Images name an explicit tag other than latest",
    Severity.ERROR,
    rationale=(
        "An image without a tag is `:latest`, and `latest` moves: the same manifest deploys "
        "different code from one day (or one node) to the next, a rollback redeploys the new "
        "code, and nobody can tell from Git what runs. An image pinned by digest is immutable "
        "and passes whatever its tag."
    ),
    remediation=(
        "Reference a released version (`registry.example.com/odoo:17.0.20260115`), ideally "
        "pinned by digest (`...@sha256:...`)."
    ),
    aliases=(
        "CKV_K8S_14",
        "KSV013",
        "kube-score:container-image-tag",
        "kube-linter:latest-tag",
        "polaris:tagNotSpecified",
    ),
)
def image_tag(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for container in workload.containers:
            image = container.image.strip()
            if not image:
                continue
            reference = parse_reference(image)
            if reference.digest:
                continue
            if not reference.tag:
                message = f"{_what(container)} uses the image {image} without a tag (:latest)"
            elif reference.tag == "latest":
                message = f"{_what(container)} uses the image {image} with the latest tag"
            else:
                continue
            yield _hit(workload, (*container.path, "image"), message, container)


_PULL_POLICIES = ("Always", "IfNotPresent", "Never")


@rule(
    "k8s.image-pull-policy",
    "Mutable image tags are pulled Always; no pull policy Never",
    Severity.WARNING,
    rationale=(
        "With `IfNotPresent` (the default for a tagged image) a node that already holds "
        "`odoo:17.0` keeps running that old build after the tag moved, so replicas of one "
        "Deployment run different code depending on their node, and the registry's "
        "credentials are not checked for images already cached (another tenant's private "
        "image can be reused). `Never` starts pods only on nodes that happen to have the "
        "image. Images pinned by digest are immutable, so IfNotPresent is right for them."
    ),
    remediation=(
        "Pin the image by digest (and keep IfNotPresent), or set `imagePullPolicy: Always` "
        "for a mutable tag; never use `Never` outside local development."
    ),
    aliases=(
        "CKV_K8S_15",
        "kube-score:container-image-pull-policy",
        "polaris:pullPolicyNotAlways",
    ),
)
def image_pull_policy(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for container in workload.containers:
            image = container.image.strip()
            if not image:
                continue
            reference = parse_reference(image)
            explicit = container.data.get("imagePullPolicy")
            what = _what(container)
            policy_path: Path = (*container.path, "imagePullPolicy")
            if explicit is not None and explicit not in _PULL_POLICIES:
                yield _hit(
                    workload,
                    policy_path,
                    f"{what} has imagePullPolicy {explicit!r}: not one of Always, "
                    "IfNotPresent, Never",
                    container,
                )
                continue
            if explicit == "Never":
                yield _hit(
                    workload,
                    policy_path,
                    f"{what} has imagePullPolicy Never: it starts only on nodes that already "
                    f"hold {image}",
                    container,
                )
                continue
            if reference.digest:
                continue
            mutable_default = reference.tag in ("", "latest")
            policy = explicit or ("Always" if mutable_default else "IfNotPresent")
            if policy != "IfNotPresent":
                continue
            if explicit is None:
                message = (
                    f"{what} pulls the mutable tag {image} IfNotPresent (the default): nodes "
                    "that cached an older build keep running it"
                )
                path: Path = (*container.path, "image")
            else:
                message = (
                    f"{what} has imagePullPolicy IfNotPresent for the mutable tag {image}: "
                    "nodes that cached an older build keep running it"
                )
                path = policy_path
            yield _hit(workload, path, message, container)


# ---------------------------------------------------------------------------------------------
# Security context


@rule(
    "k8s.run-as-non-root",
    "Containers run as a non-root user",
    Severity.ERROR,
    rationale=(
        "A process running as UID 0 is root on the node's kernel too: one container escape or "
        "writable host mount away from owning the node and every tenant on it. The Pod "
        "Security Standards' restricted profile requires runAsNonRoot; an explicit "
        "`runAsUser: 0` is root whatever runAsNonRoot says. Set at the pod or the container "
        "level (the container's setting wins)."
    ),
    remediation=(
        "Set `securityContext.runAsNonRoot: true` on the pod (and a non-zero runAsUser if the "
        "image does not declare a numeric non-root USER); remove any `runAsUser: 0`."
    ),
    aliases=(
        "CKV_K8S_23",
        "KSV012",
        "KSV105",
        "kube-linter:run-as-non-root",
        "polaris:runAsRootAllowed",
    ),
)
def run_as_non_root(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        if _windows(workload):
            continue
        for container in workload.containers:
            user, user_path = _effective(workload, container, "runAsUser")
            non_root, non_root_path = _effective(workload, container, "runAsNonRoot")
            uid = _int(user)
            what = _what(container)
            if uid == 0:
                yield _hit(workload, user_path, f"{what} runs as UID 0 (root)", container)
            elif non_root is True or (uid is not None and uid > 0):
                continue
            elif non_root is False:
                yield _hit(
                    workload,
                    non_root_path,
                    f"{what} sets runAsNonRoot: false and no non-zero runAsUser",
                    container,
                )
            else:
                yield _hit(
                    workload,
                    (*container.path, "securityContext", "runAsNonRoot"),
                    f"{what} may run as root: neither it nor the pod sets runAsNonRoot: true "
                    "or a non-zero runAsUser",
                    container,
                )


@rule(
    "k8s.privileged",
    "Containers do not run privileged",
    Severity.ERROR,
    rationale=(
        "A privileged container has every capability and every device of the node and no "
        "seccomp or AppArmor confinement: it is root on the host in all but name. The Pod "
        "Security Standards' baseline profile forbids it."
    ),
    remediation=(
        "Remove `securityContext.privileged` (or set it to false); grant the one capability "
        "the workload needs instead, or run the task on the node outside Kubernetes."
    ),
    aliases=(
        "CKV_K8S_16",
        "KSV017",
        "kube-score:container-security-context-privileged",
        "kube-linter:privileged-container",
        "polaris:runAsPrivileged",
    ),
)
def privileged(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for container in workload.containers:
            if _security(container).get("privileged") is True:
                yield _hit(
                    workload,
                    (*container.path, "securityContext", "privileged"),
                    f"{_what(container)} runs privileged",
                    container,
                )


@rule(
    "k8s.privilege-escalation",
    "Containers set allowPrivilegeEscalation: false",
    Severity.ERROR,
    rationale=(
        "allowPrivilegeEscalation defaults to true: a process can gain more privileges than "
        "its parent through setuid binaries or file capabilities (sudo, ping...), turning a "
        "compromised non-root process into root. The restricted Pod Security Standard "
        "requires it to be set to false explicitly."
    ),
    remediation="Set `securityContext.allowPrivilegeEscalation: false` on every container.",
    aliases=(
        "CKV_K8S_20",
        "KSV001",
        "kube-linter:privilege-escalation-container",
        "polaris:privilegeEscalationAllowed",
    ),
)
def privilege_escalation(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return _required_flag(
        changeset, "allowPrivilegeEscalation", wanted=False, unset="it defaults to true"
    )


def _required_flag(changeset: ChangeSet, flag: str, *, wanted: bool, unset: str) -> Iterator[Hit]:
    """Every Linux container whose securityContext does not set `flag: wanted`."""
    shown = str(wanted).lower()
    for workload in changeset.workloads:
        if _windows(workload):
            continue
        for container in workload.containers:
            value = _security(container).get(flag)
            if value is wanted:
                continue
            if isinstance(value, bool):
                message = f"{_what(container)} sets {flag}: {str(value).lower()}"
            else:
                message = f"{_what(container)} does not set {flag}: {shown} ({unset})"
            yield _hit(workload, (*container.path, "securityContext", flag), message, container)


@rule(
    "k8s.read-only-root-fs",
    "Containers have a read-only root filesystem",
    Severity.WARNING,
    rationale=(
        "A writable root filesystem lets an intruder drop tools and binaries, patch the "
        "application's code in place (Odoo addons are Python files) and persist until the "
        "pod restarts. Read-only root keeps the image as built; the directories the "
        "application must write (sessions, the filestore, /tmp) become explicit volumes."
    ),
    remediation=(
        "Set `securityContext.readOnlyRootFilesystem: true` and mount an emptyDir or a "
        "persistent volume on each path the application writes (e.g. /tmp, /var/lib/odoo)."
    ),
    aliases=(
        "CKV_K8S_22",
        "KSV014",
        "kube-score:container-security-context-readonlyrootfilesystem",
        "kube-linter:no-read-only-root-fs",
        "polaris:notReadOnlyRootFilesystem",
    ),
)
def read_only_root_fs(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return _required_flag(
        changeset, "readOnlyRootFilesystem", wanted=True, unset="its root filesystem is writable"
    )


def _capability(value: Any) -> str:
    """`CAP_SYS_ADMIN`, `sys_admin` -> `SYS_ADMIN`; "" for what is not a string."""
    if not isinstance(value, str):
        return ""
    return value.strip().upper().removeprefix("CAP_")


@rule(
    "k8s.capabilities-drop-all",
    "Containers drop ALL capabilities",
    Severity.ERROR,
    rationale=(
        "Container runtimes grant a default set of Linux capabilities (CHOWN, DAC_OVERRIDE, "
        "SETUID, and in many runtimes NET_RAW to forge packets on the pod network) that web "
        "applications never need and attackers use. The restricted Pod Security Standard "
        "requires dropping ALL and adding back only NET_BIND_SERVICE."
    ),
    remediation=(
        "Set `securityContext.capabilities.drop: [ALL]` on every container and add back only "
        "what it needs (usually nothing; NET_BIND_SERVICE to bind a port below 1024)."
    ),
    aliases=(
        "CKV_K8S_37",
        "CKV_K8S_28",
        "KSV003",
        "kube-linter:drop-net-raw-capability",
        "polaris:insecureCapabilities",
    ),
)
def capabilities_drop_all(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        if _windows(workload):
            continue
        for container in workload.containers:
            dropped = [
                _capability(c) for c in _list(dig(_security(container), ("capabilities", "drop")))
            ]
            if "ALL" in dropped:
                continue
            named = ", ".join(c for c in dropped if c)
            detail = f"drops only {named}" if named else "drops no capabilities"
            yield _hit(
                workload,
                (*container.path, "securityContext", "capabilities", "drop"),
                f"{_what(container)} {detail}: it keeps the runtime's default capabilities",
                container,
            )


# What the Pod Security Standards' baseline profile lets a container add.
_BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


@rule(
    "k8s.dangerous-capabilities",
    "Containers add no dangerous capabilities",
    Severity.ERROR,
    rationale=(
        "Capabilities beyond the baseline set break container isolation: SYS_ADMIN is nearly "
        "root on the host (mount, namespaces), SYS_MODULE loads kernel modules, SYS_PTRACE "
        "reads other processes' memory, NET_ADMIN rewrites the pod's routes and firewall, "
        "NET_RAW forges packets, ALL grants everything. The baseline Pod Security Standard "
        "allows adding only AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, "
        "NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID and SYS_CHROOT; anything else is "
        "flagged, so capabilities added to the kernel later are caught too."
    ),
    remediation=(
        "Remove the capability from securityContext.capabilities.add; if a workload truly "
        "needs it (a CNI or storage agent), run it in a dedicated, non-tenant namespace and "
        "waive this rule for that workload only."
    ),
    aliases=(
        "CKV_K8S_39",
        "CKV_K8S_25",
        "KSV005",
        "KSV022",
        "KSV119",
        "KSV120",
        "polaris:dangerousCapabilities",
    ),
)
def dangerous_capabilities(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for container in workload.containers:
            added = _list(dig(_security(container), ("capabilities", "add")))
            for index, value in enumerate(added):
                name = _capability(value)
                if name and name not in _BASELINE_CAPABILITIES:
                    yield _hit(
                        workload,
                        (*container.path, "securityContext", "capabilities", "add", index),
                        f"{_what(container)} adds the capability {name}",
                        container,
                    )


_SECCOMP_CONFINED = ("RuntimeDefault", "Localhost")
_SECCOMP_ANNOTATIONS = ("seccomp.security.alpha.kubernetes.io/pod",)
_SECCOMP_CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"


def _legacy_seccomp(workload: Workload, container: Container) -> bool:
    annotations = _dict(dig(workload.document.data, (*workload.pod_metadata_path(), "annotations")))
    keys = (*_SECCOMP_ANNOTATIONS, _SECCOMP_CONTAINER_ANNOTATION + container.name)
    return any(key in annotations for key in keys)


@rule(
    "k8s.seccomp",
    "Containers run with the RuntimeDefault (or a Localhost) seccomp profile",
    Severity.ERROR,
    rationale=(
        "Kubernetes runs containers Unconfined unless told otherwise (the kubelet's "
        "seccompDefault is off by default): every system call of the kernel is reachable, "
        "including the ones most container escapes use. The runtime's default "
        "profile blocks those and nothing a web application needs. The restricted Pod "
        "Security Standard requires RuntimeDefault or Localhost, set in "
        "securityContext.seccompProfile at the pod or container level. The alpha annotations "
        "(seccomp.security.alpha.kubernetes.io/pod) do not count: they were deprecated in "
        "1.19 and have no effect since Kubernetes 1.27."
    ),
    remediation=(
        "Set `securityContext.seccompProfile: {type: RuntimeDefault}` in the pod spec (it "
        "applies to every container) and remove the legacy seccomp annotations."
    ),
    aliases=("CKV_K8S_31", "KSV030", "KSV104", "kube-score:container-seccomp-profile"),
)
def seccomp(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        if _windows(workload):
            continue
        for container in workload.containers:
            profile, path = _effective(workload, container, "seccompProfile")
            kind = _dict(profile).get("type")
            if kind in _SECCOMP_CONFINED:
                continue
            what = _what(container)
            if isinstance(kind, str) and kind:
                message = f"{what} runs with the seccomp profile {kind}"
                path = (*path, "type")
            elif _legacy_seccomp(workload, container):
                message = (
                    f"{what} sets seccomp only with the legacy alpha annotation, which "
                    "Kubernetes ignores since 1.27: it runs Unconfined"
                )
                path = (*_pod_security_path(workload), "seccompProfile")
            else:
                message = f"{what} has no seccomp profile: it runs Unconfined"
                path = (*_pod_security_path(workload), "seccompProfile")
            yield _hit(workload, path, message, container)


# ---------------------------------------------------------------------------------------------
# Host access


def _host_namespace(changeset: ChangeSet, key: str, what: str) -> Iterator[Hit]:
    for workload in changeset.workloads:
        if workload.pod_spec.get(key) is True:
            yield _hit(
                workload,
                (*workload.pod_path, key),
                f"{_where(workload.document)} sets {key}: true: its pods share the node's {what}",
            )


@rule(
    "k8s.host-network",
    "Pods do not use the host network",
    Severity.ERROR,
    rationale=(
        "hostNetwork puts the pod on the node's network stack: it can bind the node's ports, "
        "reach services listening only on the node's localhost, and with NET_RAW capture the "
        "node's traffic; most CNIs do not apply NetworkPolicies to it. The baseline Pod "
        "Security Standard forbids it."
    ),
    remediation=(
        "Remove `hostNetwork: true`; expose the workload through a Service (and Ingress) "
        "instead of the node's ports."
    ),
    aliases=(
        "CKV_K8S_19",
        "KSV009",
        "kube-linter:host-network",
        "polaris:hostNetworkSet",
    ),
)
def host_network(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return _host_namespace(changeset, "hostNetwork", "network namespace")


@rule(
    "k8s.host-pid",
    "Pods do not share the host PID namespace",
    Severity.ERROR,
    rationale=(
        "hostPID lets the containers see every process of the node, other tenants' included, "
        "with their command lines, and as root or the same UID read their environment and "
        "memory and signal them. The baseline Pod Security Standard forbids it."
    ),
    remediation="Remove `hostPID: true` from the pod spec.",
    aliases=("CKV_K8S_17", "KSV010", "kube-linter:host-pid", "polaris:hostPIDSet"),
)
def host_pid(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return _host_namespace(changeset, "hostPID", "process namespace")


@rule(
    "k8s.host-ipc",
    "Pods do not share the host IPC namespace",
    Severity.ERROR,
    rationale=(
        "hostIPC gives the containers the node's IPC namespace: they can read and corrupt "
        "the shared memory, semaphores and message queues of the host's processes and of "
        "every other pod that shares it. The baseline Pod Security Standard forbids it."
    ),
    remediation="Remove `hostIPC: true` from the pod spec.",
    aliases=("CKV_K8S_18", "KSV008", "kube-linter:host-ipc", "polaris:hostIPCSet"),
)
def host_ipc(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return _host_namespace(changeset, "hostIPC", "IPC namespace")


def _host_paths(workload: Workload) -> Iterator[tuple[int, str, str]]:
    """(volume index, volume name, host path) of each hostPath volume."""
    for index, item in enumerate(_list(workload.pod_spec.get("volumes"))):
        volume = _dict(item)
        host = volume.get("hostPath")
        if host is None:
            continue
        path = _dict(host).get("path")
        name = volume.get("name")
        yield (
            index,
            name if isinstance(name, str) else f"#{index}",
            path if isinstance(path, str) else "",
        )


def _mounted_by(workload: Workload, volume: str) -> str:
    """`, mounted by container odoo at /host`: who uses a volume, for messages."""
    mounts = []
    for container in workload.containers:
        for item in _list(container.data.get("volumeMounts")):
            mount = _dict(item)
            if mount.get("name") == volume:
                mounts.append(f"{_what(container)} at {mount.get('mountPath')}")
    return f", mounted by {' and '.join(mounts)}" if mounts else ""


@rule(
    "k8s.host-path",
    "Pods mount no hostPath volumes",
    Severity.ERROR,
    rationale=(
        "A hostPath volume exposes the node's filesystem to the pod: /var/log and /proc leak "
        "other tenants' data, writable paths let a container plant files the node executes, "
        "and data written there is lost when the pod moves. The baseline Pod Security "
        "Standard forbids hostPath volumes."
    ),
    remediation=(
        "Use a PersistentVolumeClaim, emptyDir, ConfigMap or Secret volume instead; node "
        "agents that must read the host belong in a dedicated, non-tenant namespace with a "
        "waiver naming them."
    ),
    aliases=("KSV023", "polaris:hostPathSet"),
)
def host_path(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for index, name, path in _host_paths(workload):
            yield _hit(
                workload,
                (*workload.pod_path, "volumes", index, "hostPath"),
                f"volume {name} mounts the host path {path or '(none given)'}"
                f"{_mounted_by(workload, name)}",
            )


# Where container runtimes put their API sockets on the node.
_RUNTIME_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
    "/run/k3s/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/var/run/dockershim.sock",
)
_SOCKET_NAMES = frozenset(posixpath.basename(path) for path in _RUNTIME_SOCKETS)


def _runtime_socket(path: str) -> str:
    """The runtime socket a host path exposes ("" for none): the socket or a parent folder."""
    if not path.startswith("/"):
        return ""
    normal = posixpath.normpath(path)
    if normal.startswith("//"):
        normal = normal[1:]
    if posixpath.basename(normal) in _SOCKET_NAMES:
        return normal
    for socket in _RUNTIME_SOCKETS:
        if normal == "/" or socket.startswith(normal + "/"):
            return socket
    return ""


@rule(
    "k8s.runtime-socket",
    "Pods do not mount the container runtime socket",
    Severity.ERROR,
    rationale=(
        "The Docker, containerd or CRI-O socket is the runtime's API: whoever can write to it "
        "starts privileged containers on the node, reads every container's filesystem and "
        "environment and so owns the node and every tenant on it. Mounting a parent folder "
        "(/var/run, /run) exposes the socket just the same; read-only does not help."
    ),
    remediation=(
        "Remove the volume. Build images with a rootless builder (BuildKit rootless, Kaniko, "
        "Buildah) and read container metadata from the Kubernetes API instead."
    ),
    aliases=("CKV_K8S_27", "KSV006", "kube-linter:docker-sock"),
)
def runtime_socket(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for index, name, path in _host_paths(workload):
            socket = _runtime_socket(path)
            if not socket:
                continue
            exposes = "" if socket == posixpath.normpath(path) else f", which exposes {socket}"
            yield _hit(
                workload,
                (*workload.pod_path, "volumes", index, "hostPath", "path"),
                f"volume {name} mounts the container runtime socket path {path}{exposes}"
                f"{_mounted_by(workload, name)}",
            )


@rule(
    "k8s.host-port",
    "Containers do not bind host ports",
    Severity.ERROR,
    rationale=(
        "A hostPort exposes the pod on the node's own address, outside the Service and "
        "Ingress path the platform secures, and allows only one such pod per node (rollouts "
        "stall on small clusters). The baseline Pod Security Standard disallows host ports "
        "(or restricts them to a known list)."
    ),
    remediation=(
        "Remove hostPort and expose the container through a Service (ClusterIP behind the "
        "Ingress or Traefik)."
    ),
    aliases=("CKV_K8S_26", "KSV024", "polaris:hostPortSet"),
)
def host_port(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for container in workload.containers:
            for index, port in enumerate(_list(container.data.get("ports"))):
                value = _dict(port).get("hostPort")
                if value is None or isinstance(value, bool) or value in (0, "0", ""):
                    continue
                yield _hit(
                    workload,
                    (*container.path, "ports", index, "hostPort"),
                    f"{_what(container)} binds the host port {value}",
                    container,
                )


# ---------------------------------------------------------------------------------------------
# Service accounts


def _service_account(pod_spec: Mapping[str, Any]) -> str:
    """The service account pods run as: serviceAccountName, the deprecated serviceAccount,
    or "default"."""
    for key in ("serviceAccountName", "serviceAccount"):
        value = pod_spec.get(key)
        if isinstance(value, str) and value:
            return value
    return "default"


def _account_automount(changeset: ChangeSet) -> dict[tuple[str, str], Any]:
    """(namespace, name) -> automountServiceAccountToken of the ServiceAccounts in the change."""
    return {
        (document.namespace, document.name): _dict(document.data).get(
            "automountServiceAccountToken"
        )
        for document in changeset.of_kind("ServiceAccount")
    }


def _token_mounted(workload: Workload, accounts: Mapping[tuple[str, str], Any]) -> bool:
    """Whether pods get an API token: the pod's setting, else its ServiceAccount's (if known)."""
    value = workload.pod_spec.get("automountServiceAccountToken")
    if isinstance(value, bool):
        return value
    account = (workload.document.namespace, _service_account(workload.pod_spec))
    return accounts.get(account) is not False


@rule(
    "k8s.automount-token",
    "Pods that do not call the Kubernetes API get no service-account token",
    Severity.WARNING,
    rationale=(
        "By default every pod gets a token for the Kubernetes API mounted at "
        "/var/run/secrets/kubernetes.io/serviceaccount. Odoo, Redis and most applications "
        "never call the API, so the token only serves an intruder, who can use whatever RBAC "
        "the service account has been granted. The token is off when the pod "
        "spec, or the ServiceAccount it uses (when it is in the change), sets "
        "automountServiceAccountToken: false."
    ),
    remediation=(
        "Set `automountServiceAccountToken: false` in the pod spec (or on its dedicated "
        "ServiceAccount); workloads that do call the API keep the token and use a dedicated, "
        "least-privileged ServiceAccount (waive this rule for them)."
    ),
    aliases=("CKV_K8S_38", "KSV036", "polaris:automountServiceAccountToken"),
)
def automount_token(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    accounts = _account_automount(changeset)
    for workload in changeset.workloads:
        if not _token_mounted(workload, accounts):
            continue
        explicit = workload.pod_spec.get("automountServiceAccountToken") is True
        account = _service_account(workload.pod_spec)
        detail = (
            "sets automountServiceAccountToken: true"
            if explicit
            else "does not set automountServiceAccountToken: false"
        )
        yield _hit(
            workload,
            (*workload.pod_path, "automountServiceAccountToken"),
            f"{_where(workload.document)} {detail}: its pods get an API token of the "
            f"service account {account}",
        )


@rule(
    "k8s.default-service-account",
    "Pods that call the Kubernetes API use a dedicated service account",
    Severity.WARNING,
    rationale=(
        "Every pod of a namespace that names no service account runs as `default`, so a "
        "permission granted to `default` for one workload is granted to all of them, and "
        "audit logs cannot tell them apart. Pods whose token is not mounted have no API "
        "identity and pass."
    ),
    remediation=(
        "Create a ServiceAccount for the workload, grant it only what it needs, and set "
        "`serviceAccountName`; or set `automountServiceAccountToken: false` if the pods do "
        "not call the API."
    ),
    aliases=("kube-linter:default-service-account",),
)
def default_service_account(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    accounts = _account_automount(changeset)
    for workload in changeset.workloads:
        if _service_account(workload.pod_spec) != "default":
            continue
        if not _token_mounted(workload, accounts):
            continue
        named = workload.pod_spec.get("serviceAccountName")
        path: Path = (
            (*workload.pod_path, "serviceAccountName") if named is not None else workload.pod_path
        )
        yield _hit(
            workload,
            path,
            f"{_where(workload.document)} runs as the namespace's default service account "
            "with an API token",
        )


# ---------------------------------------------------------------------------------------------
# Secrets

# Words that make an environment variable's name a secret's name (matched without separators).
_SECRET_WORDS = (
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "APIKEY",
    "PRIVATEKEY",
    "CREDENTIAL",
)
# Name segments that are secrets on their own (DB_PASS, SMTP_PWD; not the shell's PWD).
_SECRET_SEGMENTS = frozenset({"PASS", "PWD", "KEY"})
# Last segments that describe a secret rather than hold it (SECRET_NAME, TOKEN_TTL...).
_NOT_A_VALUE = frozenset(
    {
        "FILE",
        "PATH",
        "DIR",
        "NAME",
        "REF",
        "ID",
        "TTL",
        "LENGTH",
        "EXPIRY",
        "EXPIRES",
        "EXPIRATION",
        "TIMEOUT",
        "SECONDS",
        "ENABLED",
        "HEADER",
        "FIELD",
        "URL",
        "URI",
        "ENDPOINT",
        "TYPE",
        "MODE",
        "VERSION",
    }
)
# Segments before KEY that make it an identifier, not a secret (CACHE_KEY, PUBLIC_KEY).
_BENIGN_KEYS = frozenset(
    {"CACHE", "SORT", "PARTITION", "PRIMARY", "FOREIGN", "ROUTING", "SHARD", "LOOKUP", "PUBLIC"}
)
_REFERENCE = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_.-]*\)")
_URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@")
_NOT_SECRET_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "null", "none"})


def _secret_name(name: str) -> bool:
    segments = [s for s in re.split(r"[^A-Z0-9]+", name.upper()) if s]
    if not segments or segments == ["PWD"] or segments[-1] in _NOT_A_VALUE:
        return False
    joined = "".join(segments)
    if any(word in joined for word in _SECRET_WORDS):
        return True
    for index, segment in enumerate(segments):
        if segment == "KEY":
            if index == 0 or segments[index - 1] not in _BENIGN_KEYS:
                return True
        elif segment in _SECRET_SEGMENTS:
            return True
    return False


def _literal(value: str) -> str:
    """The text of a value once `$(VAR)` references to other variables are taken out."""
    return _REFERENCE.sub("", value).strip()


def _looks_secret(name: str, value: str) -> str:
    """Why an env var's literal value is a secret ("" when it is not)."""
    for match in _URL_CREDENTIALS.finditer(value):
        if _literal(match.group(1)):
            return "a URL with an inline password"
    if not _secret_name(name):
        return ""
    text = _literal(value)
    if not text or text.lower() in _NOT_SECRET_VALUES:
        return ""
    if re.fullmatch(r"[0-9.]+", text):  # a TTL, a length, a port: not a credential
        return ""
    return "a literal value"


@rule(
    "k8s.env-secret-literal",
    "No secrets written as literal environment values",
    Severity.ERROR,
    rationale=(
        "A password, token or key written as an env `value` is in plain text in Git, in "
        "every rendered manifest and CI log, and readable by anyone who can `get` the "
        "Deployment (RBAC often grants that far more widely than Secrets). Variables are "
        "flagged by name (PASSWORD, PASSWD, SECRET, TOKEN, API key, ..._KEY, ..._PASS) and "
        "any value with a password inside a URL (postgres://user:pass@host); values made only "
        "of $(VAR) references are fine."
    ),
    remediation=(
        "Move the value into a Secret managed outside Git (SealedSecrets, External Secrets, "
        "SOPS) and mount it as a file, or reference it with env.valueFrom.secretKeyRef."
    ),
    aliases=("kube-linter:env-var-secret", "polaris:sensitiveContainerEnvVar"),
)
def env_secret_literal(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for container in workload.containers:
            for index, item in enumerate(_list(container.data.get("env"))):
                entry = _dict(item)
                name, value = entry.get("name"), entry.get("value")
                if not isinstance(name, str) or not isinstance(value, str):
                    continue
                why = _looks_secret(name, value)
                if why:
                    yield _hit(
                        workload,
                        (*container.path, "env", index, "value"),
                        f"{_what(container)} writes {name} as {why} in the manifest",
                        container,
                    )


@rule(
    "k8s.env-secret-ref",
    "Secrets are mounted as files rather than passed as environment variables",
    Severity.INFO,
    rationale=(
        "Reported for visibility only. A Secret referenced through secretKeyRef or "
        "envFrom.secretRef stays out of Git, but once in the environment it is inherited by "
        "every child process, printed by crash handlers and debug pages, and dumped by "
        "`env` in a support session. Files (a Secret volume) avoid that and follow rotations "
        "without a restart; many applications only read env, which is why this is not a "
        "warning."
    ),
    remediation=(
        "Mount the Secret as a volume (readOnly) and point the application at the file "
        "(e.g. `*_FILE` variables, or Odoo's config file from a Secret)."
    ),
    aliases=("CKV_K8S_35", "kube-linter:read-secret-from-env-var"),
)
def env_secret_ref(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for container in workload.containers:
            what = _what(container)
            for index, item in enumerate(_list(container.data.get("env"))):
                entry = _dict(item)
                ref = _dict(dig(entry, ("valueFrom", "secretKeyRef")))
                if ref:
                    yield _hit(
                        workload,
                        (*container.path, "env", index, "valueFrom", "secretKeyRef"),
                        f"{what} reads {entry.get('name')} from the Secret {ref.get('name')} "
                        "as an environment variable",
                        container,
                    )
            for index, entry in enumerate(_list(container.data.get("envFrom"))):
                ref = _dict(_dict(entry).get("secretRef"))
                if ref:
                    yield _hit(
                        workload,
                        (*container.path, "envFrom", index, "secretRef"),
                        f"{what} loads the whole Secret {ref.get('name')} into its environment",
                        container,
                    )


def _filled(value: Any) -> list[str]:
    """The keys of a Secret's data/stringData that hold something."""
    return [str(key) for key, item in _dict(value).items() if item not in (None, "", b"")]


@rule(
    "k8s.plain-secret",
    "No plain Kubernetes Secrets with data in Git",
    Severity.ERROR,
    rationale=(
        "A Secret's `data` is base64, an encoding anyone can reverse, and `stringData` is "
        "plain text: committing one puts the credential in Git history for good, on every "
        "clone and CI runner. A SOPS-encrypted Secret (with its top-level `sops` block) is "
        "encrypted and passes; so does a Secret with no values."
    ),
    remediation=(
        "Rotate the credential, then commit a SealedSecret, an ExternalSecret pointing at "
        "the secret store, or the Secret encrypted with SOPS instead."
    ),
)
def plain_secret(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document in changeset.of_kind("Secret"):
        if document.api_version != "v1" or "sops" in _dict(document.data):
            continue
        for key in ("data", "stringData"):
            keys = _filled(document.get(key))
            if keys:
                shown = ", ".join(sorted(keys)[:10]) + (", ..." if len(keys) > 10 else "")
                yield Hit(
                    document,
                    (key,),
                    f"{_where(document)} commits {len(keys)} value(s) in {key} ({shown}) "
                    "unencrypted",
                )


# ---------------------------------------------------------------------------------------------
# Manifests


# Objects that harden the default namespace rather than run something in it.
_DEFAULT_NAMESPACE_GUARDS = frozenset({"NetworkPolicy", "ResourceQuota", "LimitRange"})


@rule(
    "k8s.default-namespace",
    "Objects are not written into the default namespace",
    Severity.ERROR,
    rationale=(
        "The default namespace has none of a tenant namespace's guardrails (quota, limit "
        "range, NetworkPolicies, RBAC) and mixes whatever lands there. Only an explicit "
        "`namespace: default` is flagged: a manifest without a namespace goes where kubectl, "
        "Kustomize or the Argo CD Application points it, which is decided there. "
        "NetworkPolicies, quotas and limit ranges hardening the default namespace, and its "
        "`default` ServiceAccount, are allowed."
    ),
    remediation=(
        "Set metadata.namespace to the tenant or platform namespace the object belongs to "
        "(tenant-acme), or leave it out and let the Application's destination decide."
    ),
    aliases=("CKV_K8S_21", "KSV110", "kube-linter:use-namespace"),
)
def default_namespace(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document in changeset.kubernetes():
        if document.namespace != "default":
            continue
        kind = document.kind
        if kind in _DEFAULT_NAMESPACE_GUARDS:
            continue
        if kind == "ServiceAccount" and document.name == "default":
            continue
        yield Hit(
            document,
            ("metadata", "namespace"),
            f"{kind or 'object'} {document.name} is written into the default namespace",
        )


# Removed API versions, from the Kubernetes Deprecated API Migration Guide:
# (apiVersion, kinds, the release that stopped serving them, what to use instead).
_NO_PSP = "Pod Security Admission namespace labels (PodSecurityPolicy has no successor API)"
_REMOVALS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("extensions/v1beta1", ("Deployment", "DaemonSet", "ReplicaSet"), "1.16", "apps/v1"),
    ("extensions/v1beta1", ("NetworkPolicy",), "1.16", "networking.k8s.io/v1"),
    ("extensions/v1beta1", ("PodSecurityPolicy",), "1.16", _NO_PSP),
    ("extensions/v1beta1", ("Ingress",), "1.22", "networking.k8s.io/v1"),
    ("apps/v1beta1", ("Deployment", "StatefulSet", "ReplicaSet"), "1.16", "apps/v1"),
    ("apps/v1beta2", ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"), "1.16", "apps/v1"),
    ("networking.k8s.io/v1beta1", ("Ingress", "IngressClass"), "1.22", "networking.k8s.io/v1"),
    (
        "admissionregistration.k8s.io/v1beta1",
        ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"),
        "1.22",
        "admissionregistration.k8s.io/v1",
    ),
    (
        "apiextensions.k8s.io/v1beta1",
        ("CustomResourceDefinition",),
        "1.22",
        "apiextensions.k8s.io/v1",
    ),
    ("apiregistration.k8s.io/v1beta1", ("APIService",), "1.22", "apiregistration.k8s.io/v1"),
    (
        "certificates.k8s.io/v1beta1",
        ("CertificateSigningRequest",),
        "1.22",
        "certificates.k8s.io/v1",
    ),
    ("coordination.k8s.io/v1beta1", ("Lease",), "1.22", "coordination.k8s.io/v1"),
    (
        "rbac.authorization.k8s.io/v1beta1",
        ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"),
        "1.22",
        "rbac.authorization.k8s.io/v1",
    ),
    ("scheduling.k8s.io/v1beta1", ("PriorityClass",), "1.22", "scheduling.k8s.io/v1"),
    (
        "storage.k8s.io/v1beta1",
        ("CSIDriver", "CSINode", "StorageClass", "VolumeAttachment"),
        "1.22",
        "storage.k8s.io/v1",
    ),
    ("storage.k8s.io/v1beta1", ("CSIStorageCapacity",), "1.27", "storage.k8s.io/v1"),
    ("batch/v1beta1", ("CronJob",), "1.25", "batch/v1"),
    ("policy/v1beta1", ("PodDisruptionBudget",), "1.25", "policy/v1"),
    ("policy/v1beta1", ("PodSecurityPolicy",), "1.25", _NO_PSP),
    ("autoscaling/v2beta1", ("HorizontalPodAutoscaler",), "1.25", "autoscaling/v2"),
    ("autoscaling/v2beta2", ("HorizontalPodAutoscaler",), "1.26", "autoscaling/v2"),
    ("discovery.k8s.io/v1beta1", ("EndpointSlice",), "1.25", "discovery.k8s.io/v1"),
    ("events.k8s.io/v1beta1", ("Event",), "1.25", "events.k8s.io/v1"),
    ("node.k8s.io/v1beta1", ("RuntimeClass",), "1.25", "node.k8s.io/v1"),
    *(
        (
            f"flowcontrol.apiserver.k8s.io/{version}",
            ("FlowSchema", "PriorityLevelConfiguration"),
            release,
            "flowcontrol.apiserver.k8s.io/v1",
        )
        for version, release in (("v1beta1", "1.26"), ("v1beta2", "1.29"), ("v1beta3", "1.32"))
    ),
)
# (apiVersion, kind) -> (release, replacement)
_REMOVED_APIS: dict[tuple[str, str], tuple[str, str]] = {
    (version, kind): (release, replacement)
    for version, kinds, release, replacement in _REMOVALS
    for kind in kinds
}
# Group versions no longer served for any kind: apiVersion -> the release that removed the last.
_REMOVED_GROUP_VERSIONS = {
    "extensions/v1beta1": "1.22",
    "apps/v1beta1": "1.16",
    "apps/v1beta2": "1.16",
}


@rule(
    "k8s.deprecated-api",
    "Objects use apiVersions the Kubernetes API still serves",
    Severity.ERROR,
    rationale=(
        "Kubernetes stops serving beta API versions a few releases after their replacement "
        "is stable: a manifest still written against one fails to apply on current clusters "
        "(or breaks on the next upgrade), usually in the middle of a release. The table "
        "follows the Kubernetes Deprecated API Migration Guide: extensions/v1beta1 and "
        "apps/v1beta1/v1beta2 workloads (1.16), Ingress, RBAC, webhooks, CRDs and storage "
        "v1beta1 (1.22), batch/v1beta1 CronJob, policy/v1beta1 and autoscaling/v2beta1 "
        "(1.25), autoscaling/v2beta2 (1.26) and the flowcontrol betas (1.26, 1.29, 1.32)."
    ),
    remediation=(
        "Change apiVersion to the replacement the finding names and adapt the renamed "
        "fields (`kubectl convert` helps); check the object against the cluster's version."
    ),
    aliases=("KSV107", "kube-score:stable-version", "kube-linter:no-extensions-v1beta"),
)
def deprecated_api(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document in changeset.kubernetes():
        api_version, kind = document.api_version, document.kind
        removed = _REMOVED_APIS.get((api_version, kind))
        if removed is not None:
            release, replacement = removed
            message = (
                f"{kind} {document.name} uses {api_version}, no longer served since "
                f"Kubernetes {release}: use {replacement}"
            )
        elif api_version in _REMOVED_GROUP_VERSIONS:
            message = (
                f"{kind} {document.name} uses {api_version}, no longer served for any kind "
                f"since Kubernetes {_REMOVED_GROUP_VERSIONS[api_version]}"
            )
        else:
            continue
        yield Hit(document, ("apiVersion",), message)


_SELECTOR_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})


def _labels_text(labels: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items())) or "none"


@rule(
    "k8s.selector-mismatch",
    "Workload selectors match their pod template labels",
    Severity.ERROR,
    rationale=(
        "A Deployment, StatefulSet, DaemonSet or ReplicaSet manages the pods its "
        "spec.selector matches; apps/v1 requires the selector and rejects one that does not "
        "match the template's labels, so the apply fails. The selector is also immutable: "
        "catching a mismatch before the first apply avoids deleting and recreating the "
        "workload later."
    ),
    remediation=(
        "Set spec.selector.matchLabels to a stable subset of spec.template.metadata.labels "
        "(e.g. `app.kubernetes.io/name: odoo`, `app.kubernetes.io/instance: acme`), never to "
        "labels that change between releases (version)."
    ),
    aliases=(
        "kube-linter:mismatching-selector",
        "kube-score:deployment-pod-selector-labels-match-template-metadata-labels",
        "kube-score:statefulset-pod-selector-labels-match-template-metadata-labels",
    ),
)
def selector_mismatch(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        document = workload.document
        if document.kind not in _SELECTOR_KINDS:
            continue
        where = _where(document)
        selector = document.get("spec", "selector")
        if selector is None:
            yield Hit(document, ("spec",), f"{where} has no spec.selector")
            continue
        labels = workload.pod_labels
        if not isinstance(selector, dict) or not (
            _dict(selector.get("matchLabels")) or _list(selector.get("matchExpressions"))
        ):
            yield Hit(
                document,
                ("spec", "selector"),
                f"{where} has a spec.selector without matchLabels or matchExpressions",
            )
        elif not selector_matches(selector, labels):
            yield Hit(
                document,
                ("spec", "selector"),
                f"{where} selects {_labels_text(_dict(selector.get('matchLabels')))}"
                f"{' (with matchExpressions)' if selector.get('matchExpressions') else ''} "
                f"but its pod template has the labels {_labels_text(labels)}",
            )


RULES = (
    cpu_request,
    memory_request,
    memory_limit,
    cpu_limit,
    readiness_probe,
    liveness_probe,
    probes_identical,
    image_tag,
    image_pull_policy,
    run_as_non_root,
    privileged,
    privilege_escalation,
    read_only_root_fs,
    capabilities_drop_all,
    dangerous_capabilities,
    seccomp,
    host_network,
    host_pid,
    host_ipc,
    host_path,
    runtime_socket,
    host_port,
    automount_token,
    default_service_account,
    env_secret_literal,
    env_secret_ref,
    plain_secret,
    default_namespace,
    deprecated_api,
    selector_mismatch,
)
