"""Live Kubernetes state, read-only: `kubectl get -o json` output, from a file or from kubectl.

Two sources of the same JSON (a `List` with `items`, or a single object):

- a snapshot file someone exported with `kubectl get ... -o json` (what the tests use: no
  Kubernetes API server runs here);
- the `kubectl` command itself, when a kubeconfig is configured (`--kubeconfig`, or the
  `KUBECONFIG` variable): one `kubectl get <kinds> --all-namespaces -o json` with a fixed argv
  and a timeout. This path is not exercised by the test suite (no cluster here).

`KubectlStatus` implements the DeliveryStatus port for teams without Argo CD: an
"application" is the set of Deployments, StatefulSets and DaemonSets labelled
`app.kubernetes.io/instance=<app>` (the label Argo CD tracks by default), and its health is
the worst `kubectl rollout status` verdict among them (domain.health.rollout_status). kubectl
cannot tell whether the cluster matches Git, so sync is always Unknown (`reports_sync` False):
`changegate drift` is the tool for that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from changegate.domain import health
from changegate.errors import InvalidInput, Problem

KUBECTL_TIMEOUT_SECONDS = 60.0
MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024
INSTANCE_LABELS: tuple[str, ...] = ("app.kubernetes.io/instance", "argocd.argoproj.io/instance")
WORKLOAD_KINDS = ("deployments", "statefulsets", "daemonsets")


def _fail(message: str, field_: str = "live") -> InvalidInput:
    return InvalidInput([Problem(message, field=field_)])


def objects_of(data: Any, source: str) -> list[dict[str, Any]]:
    """The objects of `kubectl get -o json` output: a List's items, or the one object."""
    if not isinstance(data, dict):
        raise _fail(f"{source}: not `kubectl get -o json` output (expected a JSON object)")
    kind = data.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list):
        items = [item for item in data["items"] if isinstance(item, dict)]
        # `kubectl get -o json` omits apiVersion/kind on items of typed lists only rarely;
        # a List of one kind names it as `<Kind>List`.
        implied = kind[: -len("List")] if kind != "List" else None
        version = data.get("apiVersion")
        for item in items:
            if implied and "kind" not in item:
                item["kind"] = implied
            if implied and "apiVersion" not in item and isinstance(version, str):
                item["apiVersion"] = version
        return items
    if isinstance(data.get("apiVersion"), str) and isinstance(kind, str):
        return [data]
    raise _fail(f"{source}: neither a List nor a Kubernetes object")


def read_snapshot(path: Path) -> list[dict[str, Any]]:
    """The objects of an exported `kubectl get -o json` file."""
    try:
        size = path.stat().st_size
        if size > MAX_SNAPSHOT_BYTES:
            raise _fail(f"{path}: larger than {MAX_SNAPSHOT_BYTES:,} bytes")
        raw = path.read_bytes()
    except OSError as exc:
        raise _fail(f"{path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise _fail(f"{path}: not JSON ({exc})") from None
    return objects_of(data, str(path))


@dataclass(frozen=True, slots=True)
class Kubectl:
    """The kubectl command against one kubeconfig (and optionally one context)."""

    kubeconfig: Path
    context: str | None = None
    timeout: float = KUBECTL_TIMEOUT_SECONDS

    @classmethod
    def configured(cls, kubeconfig: Path | None = None) -> Kubectl | None:
        """kubectl for the given kubeconfig, else $KUBECONFIG's first file, else None."""
        if kubeconfig is None:
            env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0].strip()
            if not env:
                return None
            kubeconfig = Path(env)
        return cls(kubeconfig)

    def get(self, kinds: Sequence[str]) -> list[dict[str, Any]]:
        """`kubectl get KINDS --all-namespaces -o json` (not tested here: no cluster)."""
        binary = shutil.which("kubectl")
        if binary is None:
            raise _fail("kubectl is not installed (or not on PATH)")
        if not self.kubeconfig.is_file():
            raise _fail(f"{self.kubeconfig}: no such kubeconfig file")
        wanted = sorted({k for k in kinds if k and not k.startswith("-") and "," not in k})
        if not wanted:
            return []
        argv = [binary, f"--kubeconfig={self.kubeconfig}"]
        if self.context:
            argv.append(f"--context={self.context}")
        argv += ["get", ",".join(wanted), "--all-namespaces", "-o", "json"]
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                argv, capture_output=True, timeout=self.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise _fail(f"kubectl get took longer than {self.timeout:g} s") from None
        except OSError as exc:
            raise _fail(f"could not run kubectl: {exc.strerror or exc}") from None
        if done.returncode != 0:
            first = done.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
            raise _fail(f"kubectl get failed: {first[0] if first else 'no message'}")
        try:
            return objects_of(json.loads(done.stdout), "kubectl get")
        except ValueError:
            raise _fail("kubectl get printed something that is not JSON") from None


def _labels(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else {}


def _namespace(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("namespace", "")) if isinstance(meta, dict) else ""


@dataclass
class KubectlStatus:
    """DeliveryStatus from `kubectl get -o json` of the workloads: a snapshot, or kubectl."""

    load: Callable[[], list[dict[str, Any]]]
    namespace: str | None = None
    labels: tuple[str, ...] = INSTANCE_LABELS

    @classmethod
    def from_snapshot(cls, path: Path, namespace: str | None = None) -> KubectlStatus:
        return cls(lambda: read_snapshot(path), namespace)

    @classmethod
    def from_kubectl(cls, kubectl: Kubectl, namespace: str | None = None) -> KubectlStatus:
        return cls(lambda: kubectl.get(WORKLOAD_KINDS), namespace)

    def workloads(self, app: str) -> list[health.RolloutStatus]:
        try:
            objects = self.load()
        except InvalidInput as exc:
            raise health.StatusUnavailable(str(exc)) from None
        found: list[health.RolloutStatus] = []
        for obj in objects:
            if self.namespace is not None and _namespace(obj) != self.namespace:
                continue
            labels = _labels(obj)
            if not any(labels.get(label) == app for label in self.labels):
                continue
            status = health.rollout_status(obj)
            if status is not None:
                found.append(status)
        return found

    def application_status(self, app: str) -> health.AppStatus:
        workloads = self.workloads(app)
        combined = health.combined_health(workloads)
        if not workloads:
            message = f"no Deployment, StatefulSet or DaemonSet labelled with {app!r}"
        else:
            message = "; ".join(
                f"{w.kind.lower()}/{w.name}: {w.message}" for w in workloads if w.health is combined
            )
        return health.AppStatus(
            app=app,
            sync=health.SyncStatus.UNKNOWN,
            health=combined,
            message=message,
            reports_sync=False,
        )
