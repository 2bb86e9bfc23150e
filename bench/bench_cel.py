"""CEL library benchmark: which Python CEL implementation custom policy rules run on.

    python bench/bench_cel.py [--documents 2000] [--repeat 3] [--install]

Compares the two CEL libraries on PyPI that can evaluate Kubernetes-style policy
expressions without a Go toolchain:

- `common-expression-language` (import `cel`): a binding of the Rust `cel` crate;
- `cel-python` (import `celpy`): a pure-Python interpreter on a Lark grammar.

Three measurements, each library against the same inputs:

1. Compile time of 12 realistic ValidatingAdmissionPolicy-style expressions (replicas,
   resource limits, registries, digests, labels, privileged containers, secret-looking
   environment variables...), best of `--repeat`.
2. Evaluation time per document: every expression over `--documents` generated Deployments
   (three containers with environment variables, resources and security contexts, some
   of them broken on purpose), the conversion of the document to the library's values
   included, since a rule pays for it. Both libraries must agree on every answer; the
   number of disagreements is printed.
3. Correctness: a table of expressions whose answers the CEL specification and cel-go (the
   implementation Kubernetes uses, with its runtime cross-type numeric comparisons) fix:
   `has()` on a missing field and under a missing parent, int/uint/double mixing, null,
   the commutative error absorption of `&&`/`||` and of the macros, RE2 `matches`,
   `exists_one`, timestamps and durations, overflow, string sizes in code points... Each
   library scores a point per expected answer (an expected error must be an error).

Only the chosen library (`common-expression-language`) is a dependency of changegate. The
other is not: install it by hand (`pip install cel-python`) or pass `--install` to have this
script install what is missing into the running interpreter; without either, the missing
library's columns are skipped with a message.

The last lines time changegate's own path for the same expressions: `cel.compile_rule` on
a PolicyRuleSpec and `Rule.check` over the change set (matching, the conversion of only the
parts of each document the expression reads, hits), to show what a custom rule costs in a
real check.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EXPRESSIONS: tuple[str, ...] = (
    "object.spec.replicas >= 2",
    "object.spec.template.spec.containers.all(c, has(c.resources) && has(c.resources.limits))",
    "object.spec.template.spec.containers.all(c, c.image.startsWith('registry.example.com/'))",
    "object.spec.template.spec.containers.all(c, c.image.matches('@sha256:[0-9a-f]{64}$'))",
    "has(object.metadata.labels) && 'app.kubernetes.io/name' in object.metadata.labels",
    "object.metadata.namespace.startsWith('tenant-') && size(object.metadata.name) <= 63",
    "!object.spec.template.spec.containers.exists(c, has(c.securityContext) && "
    "has(c.securityContext.privileged) && c.securityContext.privileged)",
    "object.spec.template.spec.containers.all(c, !has(c.env) || c.env.all(e, "
    "!e.name.matches('(?i)(password|secret|token)') || has(e.valueFrom)))",
    "object.metadata.labels['tier'] in ['gold', 'silver', 'bronze']",
    "object.spec.template.spec.containers.exists_one(c, c.name == 'odoo')",
    "size(object.spec.template.spec.containers) <= 5 && "
    "object.spec.strategy.type == 'RollingUpdate'",
    "!has(object.spec.template.spec.hostNetwork) || object.spec.template.spec.hostNetwork == false",
)

DIGEST = "@sha256:" + "ab" * 32

# (expression, expected) where expected is a value or ERROR; `object` is SAMPLE below.
ERROR = object()
SAMPLE: dict[str, Any] = {
    "metadata": {"name": "odoo", "labels": {"app": "odoo"}},
    "spec": {"replicas": 3, "nothing": None},
}
CORRECTNESS: tuple[tuple[str, str, Any], ...] = (
    ("has() on a missing field", "has(object.spec.missing)", False),
    ("has() under a missing parent is an error", "has(object.nope.missing)", ERROR),
    ("selecting a missing field is an error", "object.spec.missing", ERROR),
    ("has() on a null field", "has(object.spec.nothing)", True),
    ("null field equals null", "object.spec.nothing == null", True),
    ("null is not 0", "null == 0", False),
    ("int equals double (numeric equality)", "1 == 1.0", True),
    ("int equals uint (numeric equality)", "1 == 1u", True),
    ("int < double (runtime cross-type order)", "1 < 2.0", True),
    ("uint < int (runtime cross-type order)", "1u < 2", True),
    ("document int vs double literal", "object.spec.replicas == 3.0", True),
    ("int + uint is no overload", "1 + 1u", ERROR),
    ("int + double is no overload", "1 + 1.0", ERROR),
    ("heterogeneous equality is false", "1 == 'a'", False),
    ("list of mixed types in", "'a' in [1, 'a']", True),
    ("error || true absorbs", "1/0 > 0 || true", True),
    ("true || error absorbs", "true || 1/0 > 0", True),
    ("error && false absorbs", "1/0 > 0 && false", False),
    ("false && error absorbs", "false && 1/0 > 0", False),
    ("error && true is an error", "1/0 > 0 && true", ERROR),
    ("error || false is an error", "1/0 > 0 || false", ERROR),
    ("all() absorbs an error by a false", "[0, -1].all(x, 1/x > 0)", False),
    ("exists() absorbs an error by a true", "[0, 1].exists(x, 1/x > 0)", True),
    ("all() with an error and only trues", "[0, 1].all(x, 1/x > 0)", ERROR),
    ("matches is a substring search", "'abc'.matches('b')", True),
    (
        "matches anchored",
        r"'registry.example.com/odoo'.matches('^registry\\.example\\.com/')",
        True,
    ),
    ("RE2 case-insensitive flag", "'ABC'.matches('(?i)abc')", True),
    ("RE2 has no look-ahead: error", "'abc'.matches('a(?=b)')", ERROR),
    ("exists_one with one match", "[1, 2, 3].exists_one(x, x > 2)", True),
    ("exists_one with two matches", "[1, 2, 3].exists_one(x, x > 1)", False),
    ("all() over an empty list", "[].all(x, false)", True),
    ("size of a string counts code points", "size('héllo')", 5),
    ("size of a map", "size(object.metadata.labels)", 1),
    (
        "timestamp + duration",
        "timestamp('2024-01-01T00:00:00Z') + duration('1h') == timestamp('2024-01-01T01:00:00Z')",
        True,
    ),
    ("duration units", "duration('1h30m') == duration('90m')", True),
    (
        "timestamp accessor in a timezone",
        "timestamp('2024-01-01T10:00:00Z').getHours('Europe/Paris')",
        11,
    ),
    ("int overflow is an error", "9223372036854775807 + 1", ERROR),
    ("uint(-1) is an error", "uint(-1)", ERROR),
    ("int division truncates", "-5 / 2", -2),
    ("int modulo sign", "-5 % 3", -2),
    ("int(double) truncates", "int(-2.9)", -2),
    ("map key missing is an error", "{'a': 1}['b']", ERROR),
    ("list index out of range is an error", "[1, 2][2]", ERROR),
    ("strings cannot be indexed", "'abc'[0]", ERROR),
    ("string + int is no overload", "'a' + 1", ERROR),
    ("conditional picks one branch", "true ? 1 : 1/0", 1),
    ("type() of uint", "type(1u) == uint", True),
    ("string of a double", "string(1.5)", "1.5"),
    (
        "contains/startsWith/endsWith",
        "'hello'.contains('ell') && 'hello'.startsWith('he') && 'hello'.endsWith('lo')",
        True,
    ),
)


def deployment(index: int) -> dict[str, Any]:
    """A generated Deployment; every few documents break one expression or another."""
    tenant = f"tenant-{index % 97:03d}"
    containers = []
    for c in range(3):
        container: dict[str, Any] = {
            "name": ("odoo", "nginx", "exporter")[c],
            "image": (
                f"registry.example.com/odoo:17.0{DIGEST}"
                if (index + c) % 7
                else f"docker.io/library/nginx:1.{index % 30}"
            ),
            "env": [{"name": f"SETTING_{e}", "value": f"value-{index}-{e}"} for e in range(8)],
            "ports": [{"containerPort": 8069 + c, "name": f"p{c}"}],
        }
        if index % 11:
            container["env"].append(
                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}
            )
        else:
            container["env"].append({"name": "DB_PASSWORD", "value": "hunter2"})
        if (index + c) % 5:
            container["resources"] = {
                "requests": {"cpu": "250m", "memory": "512Mi"},
                "limits": {"cpu": "1", "memory": "1Gi"},
            }
        if index % 13 == 0 and c == 1:
            container["securityContext"] = {"privileged": True}
        else:
            container["securityContext"] = {"runAsNonRoot": True, "readOnlyRootFilesystem": True}
        containers.append(container)
    labels = {
        "app.kubernetes.io/name": "odoo",
        "app.kubernetes.io/instance": tenant,
        "tier": ("gold", "silver", "bronze", "free")[index % 4],
    }
    if index % 17 == 0:
        del labels["app.kubernetes.io/name"]
    spec: dict[str, Any] = {
        "replicas": 1 + index % 3,
        "selector": {"matchLabels": {"app": "odoo"}},
        "strategy": {"type": "Recreate" if index % 9 == 0 else "RollingUpdate"},
        "template": {
            "metadata": {"labels": {"app": "odoo", "tenant": tenant}},
            "spec": {"containers": containers, "serviceAccountName": "odoo"},
        },
    }
    if index % 19 == 0:
        spec["template"]["spec"]["hostNetwork"] = True
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"odoo-{index}", "namespace": tenant, "labels": labels},
        "spec": spec,
    }


@dataclass
class Library:
    """One CEL library behind the same three calls."""

    name: str
    compile: Callable[[str], Any]
    evaluate: Callable[[Any, dict[str, Any]], Any]  # raises on a CEL error


def rust_library() -> Library | None:
    try:
        import cel  # type: ignore[import-untyped]
    except ImportError:
        return None

    def evaluate(program: Any, variables: dict[str, Any]) -> Any:
        return program.execute(variables)

    return Library("common-expression-language (cel, Rust)", cel.compile, evaluate)


def python_library() -> Library | None:
    try:
        import celpy  # type: ignore[import-untyped]
    except ImportError:
        return None
    environment = celpy.Environment()

    def compile_(text: str) -> Any:
        return environment.program(environment.compile(text))

    def evaluate(program: Any, variables: dict[str, Any]) -> Any:
        activation = {name: celpy.json_to_cel(value) for name, value in variables.items()}
        result = program.evaluate(activation)
        if isinstance(result, celpy.CELEvalError):
            raise result
        return result

    return Library("cel-python (celpy, pure Python)", compile_, evaluate)


def install_missing() -> None:
    wanted = {"cel": "common-expression-language", "celpy": "cel-python"}
    missing = []
    for module, package in wanted.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        print(f"installing {', '.join(missing)} into {sys.executable}")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
        importlib.invalidate_caches()


def plain(value: Any) -> Any:
    """A library's result as plain Python (celpy wraps every value in its own types)."""
    if isinstance(value, bool) or type(value).__name__ == "BoolType":
        return bool(value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    for kind in (bool, int, float, str, bytes):
        if isinstance(value, kind):
            return kind(value)
    return value


def outcome(library: Library, text: str, variables: dict[str, Any]) -> Any:
    try:
        return plain(library.evaluate(library.compile(text), variables))
    except Exception:
        return ERROR


def shown(value: Any) -> str:
    return "error" if value is ERROR else repr(value)


def best(repeat: int, action: Callable[[], object]) -> float:
    found = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        found.append(time.perf_counter() - start)
    return min(found)


def speed(libraries: list[Library], documents: list[dict[str, Any]], repeat: int) -> None:
    print(f"\n## Speed: {len(EXPRESSIONS)} expressions, {len(documents)} Deployments\n")
    print(f"{'library':42} {'compile/expr':>13} {'eval/doc/expr':>14} {'all exprs/doc':>14}")
    results: dict[str, list[list[Any]]] = {}
    per_doc: dict[str, float] = {}
    for library in libraries:
        compile_time = best(repeat, lambda lib=library: [lib.compile(e) for e in EXPRESSIONS])
        programs = [library.compile(e) for e in EXPRESSIONS]
        answers: list[list[Any]] = []

        def run(
            lib: Library = library, progs: list[Any] = programs, answers: list[Any] = answers
        ) -> None:
            answers.clear()
            for program in progs:
                row = []
                for document in documents:
                    try:
                        row.append(plain(lib.evaluate(program, {"object": document})))
                    except Exception:
                        row.append(ERROR)
                answers.append(row)

        eval_time = best(repeat, run)
        results[library.name] = [list(row) for row in answers]
        count = len(EXPRESSIONS) * len(documents)
        per_doc[library.name] = eval_time / len(documents)
        print(
            f"{library.name:42} {compile_time / len(EXPRESSIONS) * 1e3:10.3f} ms "
            f"{eval_time / count * 1e6:11.1f} µs {eval_time / len(documents) * 1e3:11.3f} ms"
        )
    if len(libraries) == 2:
        first, second = (results[lib.name] for lib in libraries)
        differ = sum(
            1
            for row_a, row_b in zip(first, second, strict=True)
            for a, b in zip(row_a, row_b, strict=True)
            if not (a is ERROR and b is ERROR) and a != b
        )
        ratio = per_doc[libraries[1].name] / per_doc[libraries[0].name]
        print(
            f"\nevaluation ratio {libraries[1].name} / {libraries[0].name}: {ratio:.1f}x; "
            f"answers that differ: {differ} of {len(EXPRESSIONS) * len(documents)}"
        )
    for library in libraries:
        rows = results[library.name]
        failing = [sum(1 for v in row if v is not True) for row in rows]
        print(f"{library.name}: documents failing each expression {failing}")


def correctness(libraries: list[Library]) -> None:
    print(f"\n## Correctness: {len(CORRECTNESS)} expressions with known answers\n")
    names = [lib.name.split(" ")[0] for lib in libraries]
    print(f"{'case':45} {'expected':>9} " + " ".join(f"{n:>28}" for n in names))
    scores = [0] * len(libraries)
    variables = {"object": SAMPLE}
    for label, text, expected in CORRECTNESS:
        cells = []
        for i, library in enumerate(libraries):
            got = outcome(library, text, variables)
            right = (
                (got is ERROR)
                if expected is ERROR
                else (got is not ERROR and got == expected and type(got) is type(expected))
            )
            scores[i] += right
            cells.append(f"{'ok ' if right else 'NO '}{shown(got)[:24]:>25}")
        print(f"{label[:45]:45} {shown(expected)[:9]:>9} " + " ".join(cells))
    print()
    for library, score in zip(libraries, scores, strict=True):
        print(f"{library.name}: {score}/{len(CORRECTNESS)} right")


def changegate_path(documents: list[dict[str, Any]], repeat: int) -> None:
    try:
        import cel  # type: ignore[import-untyped]

        from changegate.domain.policy import cel as policy_cel
        from changegate.domain.policy.changeset import ChangeSet, CheckContext
        from changegate.domain.policy.config import PolicyConfigSpec, PolicyRuleSpec
        from changegate.domain.policy.model import Document, Format
    except ImportError as error:
        print(f"\nchangegate's CEL rules not importable ({error}); skipped")
        return
    changeset = ChangeSet(
        [Document("bench.yaml", i, 1, Format.KUBERNETES, d) for i, d in enumerate(documents)]
    )
    context = CheckContext(config=PolicyConfigSpec(), environment="prod", production=True)
    specs = [
        PolicyRuleSpec(title=f"bench {i}", expression=text, message="broken")
        for i, text in enumerate(EXPRESSIONS)
    ]
    compile_time = best(
        repeat,
        lambda: [policy_cel.compile_rule(f"custom.bench-{i}", s) for i, s in enumerate(specs)],
    )
    rules = [policy_cel.compile_rule(f"custom.bench-{i}", s) for i, s in enumerate(specs)]
    print(
        f"\n## changegate: Rule.check over {len(documents)} Deployments "
        f"(compile_rule {compile_time / len(specs) * 1e3:.3f} ms/rule, cached per text)\n"
    )
    print(
        f"{'#':>2} {'cel, whole doc':>15} {'Rule.check':>12} {'ratio':>6} {'hits':>5}  expression"
    )
    total_raw = total_rule = 0.0
    for index, (text, rule) in enumerate(zip(EXPRESSIONS, rules, strict=True)):
        program = cel.compile(text)

        def raw(program: Any = program) -> None:
            for document in documents:
                with contextlib.suppress(Exception):  # an error is an answer too
                    program.execute({"object": document})

        hits: list[int] = []

        def run(rule: Any = rule, hits: list[int] = hits) -> None:
            hits[:] = [sum(1 for _ in rule.check(changeset, context))]

        raw_time, rule_time = best(repeat, raw), best(repeat, run)
        total_raw += raw_time
        total_rule += rule_time
        print(
            f"{index:>2} {raw_time / len(documents) * 1e6:12.1f} µs "
            f"{rule_time / len(documents) * 1e6:9.1f} µs {raw_time / rule_time:5.1f}x "
            f"{hits[0]:>5}  {text[:70]}"
        )
    print(
        f"all {total_raw / len(documents) * 1e3:9.3f} ms {total_rule / len(documents) * 1e3:9.3f}"
        f" ms {total_raw / total_rule:5.1f}x  per document, all {len(rules)} rules"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--install", action="store_true", help="pip install whichever library is missing"
    )
    args = parser.parse_args()
    if args.install:
        install_missing()
    libraries = []
    for make, package in (
        (rust_library, "common-expression-language"),
        (python_library, "cel-python"),
    ):
        library = make()
        if library is None:
            print(f"{package} is not installed: skipped (pip install {package}, or --install)")
        else:
            libraries.append(library)
    documents = [deployment(i) for i in range(args.documents)]
    if libraries:
        correctness(libraries)
        speed(libraries, documents, args.repeat)
    changegate_path(documents, args.repeat)


if __name__ == "__main__":
    main()
