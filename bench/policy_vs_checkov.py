"""Policy gate benchmark: `changegate check` against Checkov 3.x and a bare YAML parse.

    python bench/policy_vs_checkov.py [--sets 2000] [--repeat 3] [--skip-checkov]

1. Writes N manifest sets (default 2,000) to a temporary folder, one multi-document YAML file
   per set: the Deployment, Service and PodDisruptionBudget of an Odoo tenant (namespace
   tenant-NNNN, an image pinned by digest, probes, requests and limits, a hardened
   securityContext, anti-affinity). Defects are injected at known rates, by set number:
   every 5th has no limits, every 7th is privileged, every 11th runs `:latest`, every 13th
   mounts a hostPath, every 17th has a PodDisruptionBudget that selects nothing, every 19th a
   Service that selects nothing, and so on (DEFECTS below). Seeded, so every run writes the
   same bytes.
2. Installs Checkov 3.x into its own virtual environment (~/.cache/changegate-bench/
   checkov-venv, created on first use and reused; never from the test suite).
3. Runs, in the same run and interleaved, each --repeat times after one untimed warm-up:
   (a) `changegate check DIR --format json` (the installed console script; exit code 2, error
       findings, is expected);
   (b) `checkov -d DIR --framework kubernetes --compact --quiet -o json --skip-download
       --check <the CKV_K8S_* ids that changegate's rules name as aliases>`;
   (c) a bare parse: a fresh `python -c` of changegate's own interpreter that imports yaml
       and loads every file with `yaml.load_all(..., Loader=yaml.CSafeLoader)`, keeping the
       documents (interpreter start-up included; the child also reports its in-process
       parse time, start-up excluded);
   (d) the fixed costs: `changegate check` of a folder holding one small ConfigMap (imports,
       settings, compiling the rules; an empty folder is refused: nothing to check) and
       `python -c "import yaml"`.
   Each child is started by this script and reaped with os.wait4(), which returns that
   child's own resource usage: wall time is measured around spawn..reap, CPU time is the
   child's user+system time (its reaped sub-processes included: Checkov forks one parsing
   worker per core), and peak memory is the kernel's ru_maxrss for the child, i.e. the
   largest resident set of any single process of its tree. No sampling, no shared
   RUSAGE_CHILDREN deltas. Because Checkov's forked workers run alongside its main process,
   one more untimed run per tool samples the whole process tree every 20 ms and reports the
   peak of the summed PSS (proportional set size, so pages a fork shares are not counted
   twice).
4. Prints the figures, the findings of each tool for the compared checks (against the
   injected counts), and the ratios against the targets: changegate ≥ 20× faster than
   Checkov (wall time), ≤ 1/3 of its peak memory, and ≤ 2× the bare parse.

Nothing is asserted: the script reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"  # changegate's own virtual environment
CHANGEGATE = VENV_BIN / "changegate"
PYTHON = VENV_BIN / "python"
CHECKOV_HOME = Path(
    os.environ.get("CHANGEGATE_BENCH_CACHE", Path.home() / ".cache" / "changegate-bench")
)
CHECKOV_VENV = CHECKOV_HOME / "checkov-venv"
CHECKOV_SPEC = "checkov>=3,<4"
REGISTRY = "registry.example.com/odoo"

# name -> (every n-th set, what is wrong). Sets are numbered from 1, so with 2,000 sets
# "every 5th" is 400 sets. A set may carry several defects.
DEFECTS: dict[str, tuple[int, str]] = {
    "no-limits": (5, "the odoo container has requests but no limits"),
    "privileged": (7, "privileged: true (and so allowPrivilegeEscalation: true)"),
    "latest": (11, "image registry.example.com/odoo:latest, no digest"),
    "host-path": (13, "a hostPath volume (/var/log/odoo) mounted"),
    "pdb-selects-nothing": (17, "the PodDisruptionBudget's selector matches no pod"),
    "service-selects-nothing": (19, "the Service's selector matches no pod"),
    "no-liveness": (23, "no livenessProbe"),
    "host-network": (29, "hostNetwork: true"),
    "root": (31, "runAsNonRoot: false, runAsUser: 0"),
    "secret-env": (37, "PGPASSWORD from a secretKeyRef environment variable"),
    "default-namespace": (41, "all three objects in the default namespace"),
    "docker-socket": (43, "a hostPath volume of /var/run/docker.sock"),
    "sys-admin": (47, "capabilities add SYS_ADMIN"),
}

# What each Checkov check should fail on, in terms of the injected defects, and how many
# findings a defective set gives (Checkov reports CKV_K8S_21 on the Deployment and on the
# Service). For the sanity table only: the checks compared are the ones changegate's rules
# name as aliases.
CHECKOV_EXPECTS: dict[str, tuple[tuple[str, ...], int]] = {
    "CKV_K8S_8": (("no-liveness",), 1),
    "CKV_K8S_11": (("no-limits",), 1),
    "CKV_K8S_13": (("no-limits",), 1),
    "CKV_K8S_14": (("latest",), 1),
    "CKV_K8S_16": (("privileged",), 1),
    "CKV_K8S_19": (("host-network",), 1),
    "CKV_K8S_20": (("privileged",), 1),
    "CKV_K8S_21": (("default-namespace",), 2),
    "CKV_K8S_23": (("root",), 1),
    "CKV_K8S_25": (("sys-admin",), 1),
    "CKV_K8S_27": (("docker-socket",), 1),
    "CKV_K8S_35": (("secret-env",), 1),
    "CKV_K8S_39": (("sys-admin",), 1),
    "CKV_K8S_40": (("root",), 1),
    "CKV_K8S_43": (("latest",), 1),
}

# Where the two tools count differently on purpose, printed under the findings table.
COUNT_NOTES: dict[str, str] = {
    "CKV_K8S_21": "per object: Checkov the Deployment and the Service, changegate all three",
    "CKV_K8S_43": "changegate's image.digest applies to production (--env); none is given here",
}

# Injected defects no compared Checkov check covers: (label, defects, changegate rule).
CHANGEGATE_ONLY = (
    ("hostPath volume", ("host-path", "docker-socket"), "k8s.host-path"),
    ("PDB selects nothing", ("pdb-selects-nothing",), "k8s.pdb-targets-workload"),
    ("Service selects nothing", ("service-selects-nothing",), "k8s.service-targets-pods"),
)


# --- the manifests -------------------------------------------------------------------------


def has(defect: str, number: int) -> bool:
    return number % DEFECTS[defect][0] == 0


def manifest_set(number: int, rng: random.Random) -> str:
    """The three documents of set `number` (from 1) as one multi-document YAML file."""
    tenant = f"tenant-{number:04d}"
    namespace = "default" if has("default-namespace", number) else tenant
    digest = hashlib.sha256(f"odoo-17.0-build-{number % 97}".encode()).hexdigest()
    image = f"{REGISTRY}:latest" if has("latest", number) else f"{REGISTRY}:17.0@sha256:{digest}"
    replicas = rng.choice((2, 2, 3))
    cpu_request = rng.choice(("250m", "500m", "750m"))
    memory_request = rng.choice(("768Mi", "1Gi", "1536Mi"))
    cpu_limit = rng.choice(("1", "2"))
    memory_limit = rng.choice(("2Gi", "3Gi"))
    workers = rng.randint(2, 6)
    uid = 10100 + rng.randint(0, 899)
    db_host = f"pg-{rng.randint(1, 12):02d}.databases.svc.cluster.local"
    labels = f"app.kubernetes.io/name: odoo\n        app.kubernetes.io/instance: {tenant}"
    pdb_instance = f"{tenant}-old" if has("pdb-selects-nothing", number) else tenant
    svc_instance = f"{tenant}-web" if has("service-selects-nothing", number) else tenant

    limits = (
        ""
        if has("no-limits", number)
        else f"""
            limits:
              cpu: "{cpu_limit}"
              memory: {memory_limit}"""
    )
    liveness = (
        ""
        if has("no-liveness", number)
        else """
          livenessProbe:
            httpGet:
              path: /web/health
              port: http
            initialDelaySeconds: 30
            periodSeconds: 20
            timeoutSeconds: 5
            failureThreshold: 6"""
    )
    privileged = has("privileged", number)
    root = has("root", number)
    run_as = (
        "runAsNonRoot: false\n            runAsUser: 0"
        if root
        else (f"runAsNonRoot: true\n            runAsUser: {uid}")
    )
    pod_run_as = (
        "runAsNonRoot: false\n        runAsUser: 0"
        if root
        else (f"runAsNonRoot: true\n        runAsUser: {uid}\n        runAsGroup: {uid}")
    )
    capabilities_add = (
        "\n              add:\n                - SYS_ADMIN" if has("sys-admin", number) else ""
    )
    secret_env = (
        """
            - name: PGPASSWORD
              valueFrom:
                secretKeyRef:
                  name: odoo-db
                  key: password"""
        if has("secret-env", number)
        else ""
    )
    host_network = "\n      hostNetwork: true" if has("host-network", number) else ""
    extra_mounts = ""
    extra_volumes = ""
    if has("host-path", number):
        extra_mounts += "\n            - name: host-logs\n              mountPath: /var/log/odoo"
        extra_volumes += (
            "\n        - name: host-logs\n          hostPath:\n"
            "            path: /var/log/odoo\n            type: DirectoryOrCreate"
        )
    if has("docker-socket", number):
        extra_mounts += (
            "\n            - name: docker-socket\n              mountPath: /var/run/docker.sock"
        )
        extra_volumes += (
            "\n        - name: docker-socket\n          hostPath:\n"
            "            path: /var/run/docker.sock\n            type: Socket"
        )

    return f"""# Odoo tenant {tenant}: generated by bench/policy_vs_checkov.py
apiVersion: apps/v1
kind: Deployment
metadata:
  name: odoo
  namespace: {namespace}
  labels:
    app.kubernetes.io/name: odoo
    app.kubernetes.io/instance: {tenant}
    app.kubernetes.io/part-of: odoo-platform
    app.kubernetes.io/version: "17.0"
    changegate.io/tenant: {tenant}
  annotations:
    changegate.io/owner: team-odoo
spec:
  replicas: {replicas}
  revisionHistoryLimit: 3
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      app.kubernetes.io/name: odoo
      app.kubernetes.io/instance: {tenant}
  template:
    metadata:
      labels:
        {labels}
        app.kubernetes.io/part-of: odoo-platform
      annotations:
        kubectl.kubernetes.io/default-container: odoo
    spec:
      serviceAccountName: odoo
      automountServiceAccountToken: false{host_network}
      enableServiceLinks: false
      terminationGracePeriodSeconds: 60
      securityContext:
        {pod_run_as}
        fsGroup: {uid}
        seccompProfile:
          type: RuntimeDefault
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    app.kubernetes.io/name: odoo
                    app.kubernetes.io/instance: {tenant}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app.kubernetes.io/name: odoo
              app.kubernetes.io/instance: {tenant}
      containers:
        - name: odoo
          image: {image}
          imagePullPolicy: Always
          args:
            - --config=/etc/odoo/odoo.conf
            - --workers={workers}
            - --proxy-mode
          ports:
            - name: http
              containerPort: 8069
              protocol: TCP
            - name: websocket
              containerPort: 8072
              protocol: TCP
          env:
            - name: HOST
              value: {db_host}
            - name: PGDATABASE
              value: {tenant.replace("-", "_")}
            - name: PGPASSFILE
              value: /run/secrets/odoo-db/pgpass{secret_env}
          resources:
            requests:
              cpu: {cpu_request}
              memory: {memory_request}{limits}{liveness}
          readinessProbe:
            httpGet:
              path: /web/login
              port: http
            initialDelaySeconds: 10
            periodSeconds: 10
            timeoutSeconds: 5
          startupProbe:
            httpGet:
              path: /web/health
              port: http
            periodSeconds: 10
            failureThreshold: 30
          securityContext:
            privileged: {"true" if privileged else "false"}
            allowPrivilegeEscalation: {"true" if privileged else "false"}
            readOnlyRootFilesystem: true
            {run_as}
            capabilities:
              drop:
                - ALL{capabilities_add}
            seccompProfile:
              type: RuntimeDefault
          volumeMounts:
            - name: filestore
              mountPath: /var/lib/odoo
            - name: config
              mountPath: /etc/odoo
              readOnly: true
            - name: db-secret
              mountPath: /run/secrets/odoo-db
              readOnly: true
            - name: tmp
              mountPath: /tmp{extra_mounts}
      volumes:
        - name: filestore
          persistentVolumeClaim:
            claimName: odoo-filestore
        - name: config
          configMap:
            name: odoo-config
        - name: db-secret
          secret:
            secretName: odoo-db
            defaultMode: 0400
        - name: tmp
          emptyDir:
            sizeLimit: 1Gi{extra_volumes}
---
apiVersion: v1
kind: Service
metadata:
  name: odoo
  namespace: {namespace}
  labels:
    app.kubernetes.io/name: odoo
    app.kubernetes.io/instance: {tenant}
spec:
  type: ClusterIP
  selector:
    app.kubernetes.io/name: odoo
    app.kubernetes.io/instance: {svc_instance}
  ports:
    - name: http
      port: 8069
      targetPort: http
      protocol: TCP
    - name: websocket
      port: 8072
      targetPort: websocket
      protocol: TCP
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: odoo
  namespace: {namespace}
  labels:
    app.kubernetes.io/name: odoo
    app.kubernetes.io/instance: {tenant}
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: odoo
      app.kubernetes.io/instance: {pdb_instance}
"""


@dataclass
class Corpus:
    folder: Path
    sets: int
    files: int
    documents: int
    size: int
    injected: Counter[str]


def generate(folder: Path, sets: int, seed: int) -> Corpus:
    """Write `sets` files (three documents each) into folder/manifests, deterministically."""
    rng = random.Random(seed)
    target = folder / "manifests"
    target.mkdir(parents=True)
    injected: Counter[str] = Counter()
    size = 0
    for number in range(1, sets + 1):
        text = manifest_set(number, rng)
        (target / f"tenant-{number:04d}.yaml").write_text(text, encoding="utf-8")
        size += len(text)
        for name in DEFECTS:
            if has(name, number):
                injected[name] += 1
    return Corpus(target, sets, sets, sets * 3, size, injected)


# --- Checkov -------------------------------------------------------------------------------


def checkov_install() -> tuple[Path, str]:
    """Checkov's executable and version, installing it into its own venv when absent."""
    checkov = CHECKOV_VENV / "bin" / "checkov"
    if not checkov.exists():
        print(f"installing {CHECKOV_SPEC} into {CHECKOV_VENV} (once) ...", flush=True)
        CHECKOV_VENV.parent.mkdir(parents=True, exist_ok=True)
        python3 = shutil.which("python3") or "python3"
        subprocess.run([python3, "-m", "venv", str(CHECKOV_VENV)], check=True)
        subprocess.run(
            [str(CHECKOV_VENV / "bin" / "pip"), "install", "--quiet", CHECKOV_SPEC],
            check=True,
        )
    version = subprocess.run(
        [str(checkov), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return checkov, version


def changegate_rules() -> list[dict[str, Any]]:
    """Every rule changegate knows, from `changegate policy rules --json`."""
    done = subprocess.run(
        [str(CHANGEGATE), "policy", "rules", "--json"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"`changegate policy rules --json` failed ({done.returncode}):\n{done.stderr}")
    data = json.loads(done.stdout)
    rules: list[dict[str, Any]] = data["rules"] if isinstance(data, dict) else data
    return rules


def comparable_checks(rules: list[dict[str, Any]]) -> dict[str, list[str]]:
    """CKV_K8S_* id -> the changegate rules that name it as an alias."""
    found: dict[str, list[str]] = {}
    for rule in rules:
        for alias in rule.get("aliases", ()):
            if alias.upper().startswith("CKV_K8S_"):
                found.setdefault(alias.upper(), []).append(rule["id"])
    return dict(sorted(found.items(), key=lambda item: int(item[0].rsplit("_", 1)[1])))


# --- measuring a child ---------------------------------------------------------------------


@dataclass
class Run:
    wall: float  # seconds, spawn to reap
    cpu: float  # user + system seconds of the child and its reaped children
    maxrss: int  # KiB: the largest resident set of any single process of the tree
    code: int
    stdout: bytes = b""
    tree_pss: int | None = None  # KiB: peak of the summed PSS of the tree (sampled)


def _children(pid: int) -> list[int]:
    """Every live descendant of pid, from /proc/*/stat."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, ()))
    return tree


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(
    command: list[str], *, cwd: Path, env: dict[str, str] | None = None, sample: bool = False
) -> Run:
    """Run command (stdout kept, stderr discarded) and reap it with os.wait4()."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.DEVNULL)
        peak = [0]
        stop = threading.Event()
        sampler = None
        if sample:

            def watch() -> None:
                while not stop.is_set():
                    total = sum(_pss(pid) for pid in _children(child.pid))
                    peak[0] = max(peak[0], total)
                    stop.wait(0.02)

            sampler = threading.Thread(target=watch, daemon=True)
            sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        if sampler is not None:
            sampler.join()
        out.seek(0)
        stdout = out.read()
    return Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        maxrss=usage.ru_maxrss,
        code=child.returncode,
        stdout=stdout,
        tree_pss=peak[0] if sample else None,
    )


@dataclass
class Tool:
    name: str
    command: list[str]
    expected_codes: tuple[int, ...]
    env: dict[str, str] | None = None
    runs: list[Run] = field(default_factory=list)
    tree_pss: int | None = None
    last: Run | None = None

    def run(self, cwd: Path, *, keep: bool = True, sample: bool = False) -> Run:
        done = measure(self.command, cwd=cwd, env=self.env, sample=sample)
        if done.code not in self.expected_codes:
            tail = done.stdout[-2000:].decode("utf-8", "replace")
            sys.exit(f"{self.name} exited {done.code} (expected {self.expected_codes}):\n{tail}")
        if keep:
            self.runs.append(done)
        if sample:
            self.tree_pss = done.tree_pss
        self.last = done
        return done

    @property
    def wall_median(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def wall_min(self) -> float:
        return min(r.wall for r in self.runs)

    @property
    def cpu_median(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def maxrss(self) -> int:
        return max(r.maxrss for r in self.runs)


BARE_PARSE = """\
import json, os, sys, time
start = time.perf_counter()
import yaml
imported = time.perf_counter()
documents = []
for root, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    for name in sorted(files):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(root, name), "rb") as fh:
                documents.extend(yaml.load_all(fh, Loader=yaml.CSafeLoader))
done = time.perf_counter()
print(json.dumps({"documents": len(documents), "import_s": imported - start,
                  "parse_s": done - imported}))
"""


# --- reporting -----------------------------------------------------------------------------


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


def seconds(value: float) -> str:
    return f"{value:.3f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def table(rows: list[list[str]], right: set[int] | None = None) -> None:
    right = right or set()
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        print("  " + "  ".join(cells).rstrip())
        if index == 0:
            print("  " + "  ".join("-" * w for w in widths))


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def changegate_counts(run: Run) -> tuple[Counter[str], dict[str, Any]]:
    report = json.loads(run.stdout)
    return Counter(f["rule"] for f in report["findings"]), report


def checkov_counts(run: Run) -> Counter[str]:
    data = json.loads(run.stdout or b"{}")
    reports = data if isinstance(data, list) else [data]
    counts: Counter[str] = Counter()
    for report in reports:
        for failed in report.get("results", {}).get("failed_checks", ()):
            counts[failed["check_id"]] += 1
    return counts


# --- main ----------------------------------------------------------------------------------


def tools_for(
    work: Path,
    folder: Path,
    checkov: Path | None,
    checks: dict[str, list[str]],
    *,
    all_checks: bool,
) -> dict[str, Tool]:
    """What is run, by key, in the order each round runs it."""
    empty = work / "empty"
    empty.mkdir()
    (empty / "one.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one, namespace: tenant-0001}\n"
    )
    tools = {
        "gate": Tool(
            "changegate check", [str(CHANGEGATE), "check", str(folder), "--format", "json"], (0, 2)
        )
    }
    if checkov is not None:
        command = [
            str(checkov), "-d", str(folder), "--framework", "kubernetes", "--compact", "--quiet",
            "-o", "json", "--skip-download",  # nothing fetched from the Prisma Cloud platform
        ]  # fmt: skip
        tools["checkov"] = Tool(
            f"checkov, {len(checks)} checks", [*command, "--check", ",".join(checks)], (0, 1)
        )
        if all_checks:
            tools["checkov-all"] = Tool("checkov, all Kubernetes checks", command, (0, 1))
    tools["bare"] = Tool(
        "bare parse (python -c)", [str(PYTHON), "-c", BARE_PARSE, str(folder)], (0,)
    )
    # The fixed costs: changegate's start-up (imports, settings, rules) and Python's.
    tools["gate-empty"] = Tool(
        "changegate check, one small file",
        [str(CHANGEGATE), "check", str(empty), "--format", "json"],
        (0, 2),
    )
    tools["start-up"] = Tool(
        "python start-up + import yaml", [str(PYTHON), "-c", "import yaml"], (0,)
    )
    return tools


def run_all(tools: list[Tool], cwd: Path, repeat: int) -> None:
    """One untimed warm-up each (page cache, .pyc files), then `repeat` interleaved timed
    rounds, then one more run each that samples the process tree's memory."""
    for tool in tools:
        tool.run(cwd, keep=False)
    for number in range(1, repeat + 1):
        for tool in tools:
            tool.run(cwd)
        walls = ", ".join(f"{t.name} {seconds(t.runs[-1].wall)}" for t in tools[:3])
        print(f"round {number}/{repeat}: {walls}", flush=True)
    for tool in tools:
        tool.run(cwd, keep=False, sample=True)


def print_runs(tools: list[Tool], parse_in: tuple[float, float]) -> None:
    rows = [["run", "wall median", "wall min", "CPU median", "peak RSS", "tree PSS peak", "exit"]]
    for tool in tools:
        rows.append(
            [
                tool.name,
                seconds(tool.wall_median),
                seconds(tool.wall_min),
                seconds(tool.cpu_median),
                mib(tool.maxrss),
                mib(tool.tree_pss),
                str(tool.runs[-1].code),
            ]
        )
    median, best = parse_in
    rows.append(["  bare parse in-process (no start-up)", seconds(median), seconds(best)])
    rows = [row + [""] * (7 - len(row)) for row in rows]
    table(rows, right={1, 2, 3, 4, 5})


def print_findings(
    corpus: Corpus,
    rules: list[dict[str, Any]],
    checks: dict[str, list[str]],
    gate: Tool,
    checkov: Tool | None,
) -> None:
    gate_counts, report = changegate_counts(gate.runs[-1])
    summary = report["summary"]
    print(
        f"changegate: {summary['documents']} documents, {summary['rules_run']} rules, "
        f"{len(report['findings'])} findings ({summary['errors']} errors, "
        f"{summary['warnings']} warnings, {summary['infos']} info)"
    )
    if checkov is not None:
        ck_counts = checkov_counts(checkov.runs[-1])
        print(f"checkov: {sum(ck_counts.values())} failed checks")
        print()
        rows = [["check", "injected", "checkov", "changegate", "changegate rule(s)"]]
        for check, rule_ids in checks.items():
            defects, factor = CHECKOV_EXPECTS.get(check, ((), 0))
            rows.append(
                [
                    check,
                    str(factor * sum(corpus.injected[d] for d in defects)) if defects else "-",
                    str(ck_counts.get(check, 0)),
                    str(sum(gate_counts.get(r, 0) for r in rule_ids)),
                    ", ".join(rule_ids),
                ]
            )
        table(rows, right={1, 2, 3})
        for check, note in COUNT_NOTES.items():
            if check in checks:
                print(f"  {check}: {note}")
    print()
    known = {rule["id"] for rule in rules}
    rows = [["no compared Checkov check", "injected", "changegate", "rule"]]
    for label, defects, rule_id in CHANGEGATE_ONLY:
        rows.append(
            [
                label,
                str(sum(corpus.injected[d] for d in defects)),
                str(gate_counts.get(rule_id, 0)) if rule_id in known else "-",
                rule_id if rule_id in known else f"{rule_id} (no such rule)",
            ]
        )
    table(rows, right={1, 2})
    print()
    top = ", ".join(f"{rule} {count}" for rule, count in gate_counts.most_common(10))
    print(f"changegate findings by rule (top 10): {top}")


def print_targets(tools: dict[str, Tool], parse_in: tuple[float, float]) -> None:
    gate, checkov, bare = tools["gate"], tools.get("checkov"), tools["bare"]
    fixed = tools["gate-empty"]
    rows = [["ratio", "median", "best", "target", ""]]
    if checkov is not None:
        speed = checkov.wall_median / gate.wall_median
        rows.append(
            [
                "Checkov wall / changegate wall",
                f"{speed:.1f}x",
                f"{checkov.wall_min / gate.wall_min:.1f}x",
                ">= 20x",
                verdict(speed >= 20),
            ]
        )
        rows.append(
            ["Checkov CPU / changegate CPU", f"{checkov.cpu_median / gate.cpu_median:.1f}x"]
        )
        memory = gate.maxrss / checkov.maxrss
        rows.append(
            [
                "changegate / Checkov peak RSS",
                f"{memory:.2f}",
                "",
                "<= 0.33",
                verdict(memory <= 1 / 3),
            ]
        )
        if gate.tree_pss and checkov.tree_pss:
            tree = gate.tree_pss / checkov.tree_pss
            rows.append(
                ["  same, tree PSS peak", f"{tree:.2f}", "", "<= 0.33", verdict(tree <= 1 / 3)]
            )
    ratio = gate.wall_median / bare.wall_median
    rows.append(
        [
            "changegate wall / bare parse wall",
            f"{ratio:.2f}x",
            f"{gate.wall_min / bare.wall_min:.2f}x",
            "<= 2x",
            verdict(ratio <= 2),
        ]
    )
    median, best = parse_in
    rows.append(
        [
            "  same, each one's start-up taken off",
            f"{(gate.wall_median - fixed.wall_median) / median:.2f}x",
            f"{(gate.wall_min - fixed.wall_min) / best:.2f}x",
        ]
    )
    rows.append(["changegate / bare parse peak RSS", f"{gate.maxrss / bare.maxrss:.2f}"])
    rows = [row + [""] * (5 - len(row)) for row in rows]
    table(rows, right={1, 2})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=2000, help="manifest sets (files)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each tool")
    parser.add_argument("--seed", type=int, default=20270101)
    parser.add_argument("--skip-checkov", action="store_true", help="no Checkov (quick runs)")
    parser.add_argument(
        "--checkov-all-checks",
        action="store_true",
        help="also time Checkov with every Kubernetes check (not only the comparable ones)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    args = parser.parse_args()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {CHANGEGATE}")
    rules = changegate_rules()
    checks = comparable_checks(rules)
    checkov = None
    if not args.skip_checkov:
        checkov, version = checkov_install()
        print(f"checkov {version} ({checkov})")
        if not checks:
            sys.exit("no changegate rule names a CKV_K8S_* check: nothing to compare")

    work = Path(tempfile.mkdtemp(prefix="changegate-bench-policy-"))
    try:
        corpus = generate(work, args.sets, args.seed)
        print(
            f"{corpus.files} files, {corpus.documents} documents (a Deployment, a Service and a "
            f"PodDisruptionBudget per file), {corpus.size / 1e6:.1f} MB"
        )
        print("injected: " + ", ".join(f"{name} {corpus.injected[name]}" for name in DEFECTS))
        if checkov is not None:
            print(f"compared Checkov checks ({len(checks)}): {' '.join(checks)}")
        print()
        tools = tools_for(work, corpus.folder, checkov, checks, all_checks=args.checkov_all_checks)
        # The working directory has no ./platform: changegate runs without a catalog.
        run_all(list(tools.values()), work, args.repeat)
        print()

        bare = tools["bare"]
        inside = [json.loads(run.stdout) for run in bare.runs]
        parse_in = (
            statistics.median(item["parse_s"] for item in inside),
            min(item["parse_s"] for item in inside),
        )
        print(
            f"{args.sets} sets, {inside[-1]['documents']} documents, --repeat {args.repeat}; "
            "wall and CPU (user + system, forked workers included) per run; peak RSS of the "
            "largest process (wait4 ru_maxrss, max over runs); tree PSS peak: whole process "
            "tree, sampled every 20 ms in one extra run"
        )
        print_runs(list(tools.values()), parse_in)
        print()
        print_findings(corpus, rules, checks, tools["gate"], tools.get("checkov"))
        print()
        print("targets")
        print_targets(tools, parse_in)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
