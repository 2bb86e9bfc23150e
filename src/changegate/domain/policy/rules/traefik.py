"""Traefik: TLS and certificates, HTTPS redirects, Odoo middlewares and websockets, router
shadowing, the dashboard and IngressRoute targets.

Routers come from two places, read into one model so cross-document checks see them all:

- file-provider dynamic configuration (Format.TRAEFIK, YAML or TOML): `http.routers`,
  `http.services`, `http.middlewares`, `tcp.routers`, `tls`. Traefik matches the option names
  of this configuration without regard to case (`entryPoints`, `entrypoints`), so do we;
  router, service and middleware names are compared as written.
- Kubernetes CRDs (`traefik.io/v1alpha1` and the older `traefik.containo.us/v1alpha1`):
  IngressRoute and IngressRouteTCP (each route is a router), Middleware, TraefikService and
  TLSStore.

Entrypoints. The entrypoints themselves are static configuration, which a change set does not
carry, so their role is told by name and by the catalog: an entrypoint is a TLS entrypoint when
its name contains `secure`, `https` or `443` (not `insecure`), or when a catalog Traefik service
declares it on port 443; it is a plain-HTTP entrypoint when it is named `web`, `http` or
`insecure`, or when a catalog Traefik service declares it on port 80. A router that names no
entrypoint listens on every default entrypoint, plain HTTP included.

Middlewares are resolved through the change set (file-provider definitions, `name@file`,
Middleware CRDs, `namespace-name@kubernetescrd`, chains). A middleware defined outside the
change set cannot be read, so it counts by its name: `*header*`/`*hsts*` for security headers,
`*ratelimit*`/`*rate-limit*` for rate limiting, `*redirect*` for the HTTPS redirect, `*auth*`
for authentication.

Odoo routers are told by their targets: a service whose name contains `odoo`, or that reaches
port 8069 (HTTP workers) or 8072 (gevent: websockets, and long polling before 16.0) — read
from the route's port, the Kubernetes Service's port and targetPort, or the file-provider
service's server URLs. A target is the gevent one when it reaches 8072, or when its service
or port name contains `gevent`, `longpolling` or `websocket` and it does not reach 8069.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.model import Document, Format, Hit, Path, Resource, Severity, rule

TRAEFIK_GROUPS = ("traefik.io/", "traefik.containo.us/")
ROUTE_KINDS = ("IngressRoute", "IngressRouteTCP")
_CRD_KINDS = (*ROUTE_KINDS, "Middleware", "TLSStore", "TraefikService")
ODOO_HTTP_PORT = 8069
ODOO_GEVENT_PORT = 8072
# Odoo serves `/websocket` from this series on (before it, `/longpolling`).
WEBSOCKET_SERIES = 16
DASHBOARD_SERVICES = frozenset({"api@internal", "dashboard@internal"})
_ACME_SERVICE = "acme-http@internal"
_ACME_PATH = "/.well-known/acme-challenge"

# What a middleware does, as the rules ask it.
SECURITY_HEADERS = "security-headers"
RATE_LIMIT = "rate-limit"
HTTPS_REDIRECT = "https-redirect"
AUTH = "auth"

# Fields of a headers middleware that set a security header (not just custom headers).
_SECURITY_HEADER_FIELDS = frozenset(
    {
        "stsseconds",
        "stsincludesubdomains",
        "stspreload",
        "forcestsheader",
        "framedeny",
        "customframeoptionsvalue",
        "contenttypenosniff",
        "browserxssfilter",
        "contentsecuritypolicy",
        "referrerpolicy",
        "permissionspolicy",
    }
)
_AUTH_MIDDLEWARES = frozenset({"basicauth", "digestauth", "forwardauth"})
# Middleware names that say what an unreadable middleware (defined elsewhere) does.
_NAME_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (SECURITY_HEADERS, ("header", "hsts")),
    (RATE_LIMIT, ("ratelimit", "rate-limit", "rate_limit")),
    (HTTPS_REDIRECT, ("redirect",)),
    (AUTH, ("auth",)),
)
_CHAIN_DEPTH = 10
# Services followed through weighted services from one router, at most.
_MAX_SERVICES = 100


# --------------------------------------------------------------------------- small readers


def _field(data: Any, name: str) -> tuple[str, Any]:
    """(key as written, value) of an option, matched without regard to case as Traefik does."""
    if not isinstance(data, dict):
        return name, None
    if name in data:
        return name, data[name]
    lower = name.lower()
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == lower:
            return key, value
    return name, None


def _get(data: Any, name: str) -> Any:
    return _field(data, name)[1]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _names(value: Any) -> tuple[str, ...]:
    """A list of names, or one comma-separated string of them."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list):
        return tuple(item.strip() for item in value if isinstance(item, str) and item.strip())
    return ()


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _url_port(url: Any) -> int | None:
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url if "://" in url else f"tcp://{url}")
        port = parts.port
    except ValueError:
        return None
    if port is not None:
        return port
    return {"http": 80, "https": 443}.get(parts.scheme.lower())


def _is_traefik_crd(document: Document) -> bool:
    return document.api_version.startswith(TRAEFIK_GROUPS)


# --------------------------------------------------------------------------- rules (matchers)

_MATCHER = re.compile(r"([A-Za-z][A-Za-z0-9]*)\s*\(")
_QUOTED = re.compile(r'`([^`]*)`|"((?:[^"\\]|\\.)*)"')
# Matchers whose arguments are alternatives or a set: their order means nothing.
_UNORDERED = frozenset(
    {
        "host",
        "hostheader",
        "hostsni",
        "hostregexp",
        "hostsniregexp",
        "path",
        "pathprefix",
        "pathregexp",
        "method",
        "clientip",
    }
)
_HOST_MATCHERS = frozenset({"host", "hostheader", "hostsni"})
_AND = "&&"
_PATH_MATCHERS = frozenset({"path", "pathprefix"})

Matcher = tuple[str, tuple[str, ...]]
Token = str | Matcher


def parse_rule(rule_text: str) -> list[Token] | None:
    """A Traefik rule as operators (`&&`, `||`, `!`, parentheses) and matchers, or None.

    Matcher names are lower-cased; Host arguments too (host names know no case); the
    arguments of matchers listing alternatives are sorted. Backticks and double quotes are
    the same quoting.
    """
    tokens: list[Token] = []
    index, end = 0, len(rule_text)
    while index < end:
        char = rule_text[index]
        if char.isspace():
            index += 1
        elif rule_text.startswith(("&&", "||"), index):
            tokens.append(rule_text[index : index + 2])
            index += 2
        elif char in "()!":
            tokens.append(char)
            index += 1
        else:
            found = _MATCHER.match(rule_text, index)
            if found is None:
                return None
            name = found.group(1).lower()
            parsed = _arguments(rule_text, found.end())
            if parsed is None:
                return None
            arguments, index = parsed
            if name in _HOST_MATCHERS:
                arguments = [argument.lower() for argument in arguments]
            if name in _UNORDERED:
                arguments = sorted(set(arguments))
            tokens.append((name, tuple(arguments)))
    return tokens


def _arguments(text: str, index: int) -> tuple[list[str], int] | None:
    arguments: list[str] = []
    end = len(text)
    while True:
        while index < end and text[index].isspace():
            index += 1
        if index < end and text[index] == ")" and not arguments:
            return arguments, index + 1
        quoted = _QUOTED.match(text, index)
        if quoted is None:
            return None
        backtick, double = quoted.groups()
        arguments.append(backtick if backtick is not None else double)
        index = quoted.end()
        while index < end and text[index].isspace():
            index += 1
        if index < end and text[index] == ",":
            index += 1
            continue
        if index < end and text[index] == ")":
            return arguments, index + 1
        return None


def normalise_rule(rule_text: str) -> str:
    """A rule spelled one way: same quotes and spacing, sorted Host arguments, and the
    operands of a plain conjunction (`A && B && C`) sorted; unparsable text as written."""
    tokens = parse_rule(rule_text)
    if tokens is None:
        return " ".join(rule_text.split())
    spelled = [
        token if isinstance(token, str) else f"{token[0]}({','.join(f'`{a}`' for a in token[1])})"
        for token in tokens
    ]
    conjunction = all(
        isinstance(token, tuple) if position % 2 == 0 else token == _AND
        for position, token in enumerate(tokens)
    )
    if conjunction and len(tokens) % 2 == 1:
        return " && ".join(sorted(spelled[0::2]))
    return " ".join(spelled)


def _matchers(tokens: Sequence[Token] | None) -> Iterator[Matcher]:
    for token in tokens or ():
        if isinstance(token, tuple):
            yield token


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class Target:
    """A service a router sends requests to, and what is known of where it lands."""

    name: str
    kind: str  # "Service" or "TraefikService" (IngressRoute), "file" (file provider)
    path: Path
    names: frozenset[str]  # service and port names, lower case
    ports: frozenset[int]  # route port, Service port and targetPort, server URL ports

    @property
    def odoo(self) -> bool:
        return any("odoo" in name for name in self.names) or bool(
            self.ports & {ODOO_HTTP_PORT, ODOO_GEVENT_PORT}
        )

    @property
    def gevent(self) -> bool:
        if ODOO_GEVENT_PORT in self.ports:
            return True
        if ODOO_HTTP_PORT in self.ports:
            return False
        hints = ("gevent", "longpolling", "websocket")
        return any(hint in name for name in self.names for hint in hints)

    @property
    def http(self) -> bool:
        """Known to reach Odoo's HTTP workers (8069) and not its gevent port."""
        return ODOO_HTTP_PORT in self.ports and not self.gevent

    @property
    def dashboard(self) -> bool:
        return self.name.lower() in DASHBOARD_SERVICES


@dataclass(frozen=True, slots=True)
class Router:
    """One router: a file-provider router or one route of an IngressRoute(TCP)."""

    document: Document
    path: Path
    label: str
    protocol: str  # "http" or "tcp"
    rule: str
    rule_path: Path
    tokens: tuple[Token, ...] | None
    priority: int | None  # None: Traefik's default (the rule's length)
    entrypoints: tuple[str, ...]  # () listens on every default entrypoint
    tls: Any  # the tls section; None when there is none
    tls_path: Path
    capabilities: frozenset[str]  # what its middlewares do
    middleware_path: Path
    targets: tuple[Target, ...]
    namespace: str
    resource: Resource | None

    @property
    def owner(self) -> str:
        """What holds the router's tls: the router, or the IngressRoute of the route."""
        if self.resource is not None:
            return self.label
        document = self.document
        where = f"{document.namespace}/{document.name}" if document.namespace else document.name
        return f"{document.kind} {where}"

    @property
    def has_tls(self) -> bool:
        return self.tls is not None and self.tls is not False

    def tls_value(self, name: str) -> Any:
        return _get(self.tls, name)

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset(
            argument
            for name, arguments in _matchers(self.tokens)
            if name in ("host", "hostheader")
            for argument in arguments
        )

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(
            argument
            for name, arguments in _matchers(self.tokens)
            if name in _PATH_MATCHERS
            for argument in arguments
        )

    @property
    def websocket(self) -> bool:
        return any(path.rstrip("/") == "/websocket" for path in self.paths)

    @property
    def acme(self) -> bool:
        return any(t.name == _ACME_SERVICE for t in self.targets) or any(
            path.startswith(_ACME_PATH) for path in self.paths
        )

    @property
    def odoo_web(self) -> bool:
        """Routes Odoo's HTTP workers (8069), not its gevent port."""
        return any(t.odoo and not t.gevent for t in self.targets)

    @property
    def odoo(self) -> bool:
        return any(t.odoo for t in self.targets)

    @property
    def redirects(self) -> bool:
        return HTTPS_REDIRECT in self.capabilities

    def hit(self, message: str, path: Path | None = None) -> Hit:
        return Hit(self.document, path or self.path, message, resource=self.resource)


@dataclass(slots=True)
class _Middlewares:
    """Middleware definitions of the change set, and what each does."""

    file: dict[str, Any] = field(default_factory=dict)
    crd: dict[tuple[str, str], Any] = field(default_factory=dict)
    crd_by_provider_name: dict[str, tuple[str, Any]] = field(default_factory=dict)
    memo: dict[tuple[str, str, str], frozenset[str]] = field(default_factory=dict)

    def of_file(self, reference: str, depth: int = 0) -> frozenset[str]:
        """What a middleware named in the file provider does (`name`, `name@provider`)."""
        name, _, provider = reference.partition("@")
        if provider in ("", "file"):
            return self._resolve("file", "", name, depth)
        if provider == "kubernetescrd" and name in self.crd_by_provider_name:
            namespace, _spec = self.crd_by_provider_name[name]
            crd_name = name.removeprefix(f"{namespace}-")
            return self._resolve("crd", namespace, crd_name, depth)
        return _by_name(name)

    def of_crd(self, reference: Any, namespace: str, depth: int = 0) -> frozenset[str]:
        """What a middleware an IngressRoute or chain names (`{name, namespace}`) does."""
        if not isinstance(reference, dict):
            return frozenset()
        name = _text(reference.get("name"))
        if "@" in name:
            return self.of_file(name, depth)
        own = _text(reference.get("namespace")) or namespace
        return self._resolve("crd", own, name, depth)

    def _resolve(self, source: str, namespace: str, name: str, depth: int) -> frozenset[str]:
        key = (source, namespace, name)
        if key in self.memo:
            return self.memo[key]
        if depth > _CHAIN_DEPTH:
            return frozenset()
        self.memo[key] = frozenset()  # a chain naming itself resolves to nothing
        definition = self.file.get(name) if source == "file" else self.crd.get((namespace, name))
        if definition is None:
            found = _by_name(name)
        else:
            found = self._capabilities(definition, source, namespace, depth)
        self.memo[key] = found
        return found

    def _capabilities(
        self, definition: Any, source: str, namespace: str, depth: int
    ) -> frozenset[str]:
        found: set[str] = set()
        if not isinstance(definition, dict):
            return frozenset()
        for key, value in definition.items():
            kind = key.lower() if isinstance(key, str) else ""
            if kind == "headers" and isinstance(value, dict):
                keys = {k.lower() for k in value if isinstance(k, str)}
                if keys & _SECURITY_HEADER_FIELDS:
                    found.add(SECURITY_HEADERS)
            elif kind == "ratelimit":
                found.add(RATE_LIMIT)
            elif kind == "redirectscheme":
                scheme = _get(value, "scheme")
                if scheme is None or (isinstance(scheme, str) and scheme.lower() == "https"):
                    found.add(HTTPS_REDIRECT)
            elif kind in _AUTH_MIDDLEWARES:
                found.add(AUTH)
            elif kind == "chain":
                members = _get(value, "middlewares")
                for member in members if isinstance(members, list) else ():
                    if source == "file" and isinstance(member, str):
                        found |= self.of_file(member, depth + 1)
                    elif source == "crd":
                        found |= self.of_crd(member, namespace, depth + 1)
        return frozenset(found)


def _by_name(name: str) -> frozenset[str]:
    lower = name.lower()
    return frozenset(what for what, hints in _NAME_HINTS if any(h in lower for h in hints))


@dataclass(slots=True)
class Model:
    """Every router of the change set and what the rules look up about them."""

    routers: list[Router]
    default_certificate: bool  # a default certificate or static certificates are configured
    services: dict[tuple[str, str], Document]  # Kubernetes Services by (namespace, name)
    service_namespaces: frozenset[str]
    traefik_services: frozenset[tuple[str, str]]
    traefik_service_namespaces: frozenset[str]


_MODELS: WeakKeyDictionary[ChangeSet, Model] = WeakKeyDictionary()


def build(changeset: ChangeSet) -> Model:
    """Every router, middleware, service and TLS store of the change set, read once and
    shared by every rule of the check (the model depends on the documents alone)."""
    found = _MODELS.get(changeset)
    if found is None:
        found = _MODELS[changeset] = _build(changeset)
    return found


def _build(changeset: ChangeSet) -> Model:
    files = changeset.of_format(Format.TRAEFIK)
    crds = [d for d in changeset.of_kind(*_CRD_KINDS) if _is_traefik_crd(d)]
    if not files and not crds:
        return Model([], False, {}, frozenset(), frozenset(), frozenset())
    middlewares = _Middlewares()
    file_services: dict[str, Any] = {}
    file_tcp_services: dict[str, Any] = {}
    default_certificate = False
    for document in files:
        http, tcp, tls = (_get(document.data, key) for key in ("http", "tcp", "tls"))
        for store, source in (
            (middlewares.file, _get(http, "middlewares")),
            (file_services, _get(http, "services")),
            (file_tcp_services, _get(tcp, "services")),
        ):
            if isinstance(source, dict):
                store.update((k, v) for k, v in source.items() if isinstance(k, str))
        default_certificate = default_certificate or _has_certificates(tls)
    traefik_services: set[tuple[str, str]] = set()
    for document in crds:
        spec = document.get("spec")
        if document.kind == "Middleware":
            middlewares.crd[(document.namespace, document.name)] = spec
            middlewares.crd_by_provider_name[f"{document.namespace}-{document.name}"] = (
                document.namespace,
                spec,
            )
        elif document.kind == "TLSStore" and isinstance(spec, dict):
            if spec.get("defaultCertificate") or spec.get("defaultGeneratedCert"):
                default_certificate = True
        elif document.kind == "TraefikService":
            traefik_services.add((document.namespace, document.name))
    services = {
        (d.namespace, d.name): d for d in changeset.of_kind("Service") if d.api_version == "v1"
    }
    routers: list[Router] = []
    for document in files:
        routers.extend(_file_routers(document, middlewares, file_services, file_tcp_services))
    for document in crds:
        if document.kind in ROUTE_KINDS:
            routers.extend(_crd_routers(document, middlewares, services))
    return Model(
        routers,
        default_certificate,
        services,
        frozenset(namespace for namespace, _ in services),
        frozenset(traefik_services),
        frozenset(namespace for namespace, _ in traefik_services),
    )


def _has_certificates(tls: Any) -> bool:
    certificates = _get(tls, "certificates")
    if isinstance(certificates, list) and certificates:
        return True
    stores = _get(tls, "stores")
    if isinstance(stores, dict):
        for store in stores.values():
            if _get(store, "defaultCertificate") or _get(store, "defaultGeneratedCert"):
                return True
    return False


def _service_ports(services: dict[str, Any], name: str) -> set[int]:
    """Ports a file-provider service's servers listen on, through weighted services."""
    ports: set[int] = set()
    pending: list[str] = [name]
    seen: set[str] = set()
    while pending and len(seen) <= _MAX_SERVICES:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        service = services.get(current.removesuffix("@file"))
        servers = _get(_get(service, "loadBalancer"), "servers")
        for server in servers if isinstance(servers, list) else ():
            port = _url_port(_get(server, "url") or _get(server, "address"))
            if port is not None:
                ports.add(port)
        weighted = _get(_get(service, "weighted"), "services")
        for member in weighted if isinstance(weighted, list) else ():
            inner = _get(member, "name")
            if isinstance(inner, str):
                pending.append(inner)
    return ports


_PROVIDER_PORT = re.compile(r"-(\d{2,5})$")


def _file_target(reference: str, services: dict[str, Any], path: Path) -> Target:
    name, _, provider = reference.partition("@")
    ports: set[int] = set()
    if provider in ("", "file"):
        ports = _service_ports(services, name)
    elif provider.startswith("kubernetes"):
        # The Kubernetes providers name services `namespace-name-port`.
        found = _PROVIDER_PORT.search(name)
        if found:
            ports.add(int(found.group(1)))
    return Target(reference, "file", path, frozenset({reference.lower()}), frozenset(ports))


def _file_routers(
    document: Document,
    middlewares: _Middlewares,
    services: dict[str, Any],
    tcp_services: dict[str, Any],
) -> Iterator[Router]:
    for protocol, known_services in (("http", services), ("tcp", tcp_services)):
        section_key, section = _field(document.data, protocol)
        routers_key, routers = _field(section, "routers")
        if not isinstance(routers, dict):
            continue
        for name, config in routers.items():
            if not isinstance(name, str) or not isinstance(config, dict):
                continue
            path: Path = (section_key, routers_key, name)
            rule_key, rule_value = _field(config, "rule")
            rule_text = _text(rule_value)
            entry_value = _get(config, "entryPoints")
            tls_key, tls_value = _field(config, "tls")
            if tls_value is None and tls_key in config:
                tls_value = {}  # `tls:` with nothing under it turns TLS on with defaults
            middle_key, middle_value = _field(config, "middlewares")
            capabilities: frozenset[str] = frozenset()
            if protocol == "http":
                for reference in _names(middle_value):
                    capabilities |= middlewares.of_file(reference)
            service_key, service = _field(config, "service")
            targets: tuple[Target, ...] = ()
            if isinstance(service, str) and service:
                targets = (_file_target(service, known_services, (*path, service_key)),)
            tokens = parse_rule(rule_text) if rule_text else None
            kind = "Router" if protocol == "http" else "TCPRouter"
            label = f"{'router' if protocol == 'http' else 'TCP router'} {name}@file"
            yield Router(
                document=document,
                path=path,
                label=label,
                protocol=protocol,
                rule=rule_text,
                rule_path=(*path, rule_key),
                tokens=tuple(tokens) if tokens is not None else None,
                priority=_priority(_get(config, "priority")),
                entrypoints=_names(entry_value),
                tls=tls_value,
                tls_path=(*path, tls_key) if tls_value is not None else path,
                capabilities=capabilities,
                middleware_path=(*path, middle_key) if middle_value is not None else path,
                targets=targets,
                namespace="",
                resource=Resource("", kind, "", f"{name}@file"),
            )


def _priority(value: Any) -> int | None:
    number = _int(value)
    return number if number else None


def _crd_routers(
    document: Document,
    middlewares: _Middlewares,
    services: dict[tuple[str, str], Document],
) -> Iterator[Router]:
    spec = document.get("spec")
    if not isinstance(spec, dict):
        return
    routes = spec.get("routes")
    if not isinstance(routes, list):
        return
    namespace = document.namespace
    protocol = "tcp" if document.kind == "IngressRouteTCP" else "http"
    entrypoints = _names(spec.get("entryPoints"))
    tls = spec.get("tls")
    for index, route in enumerate(routes):
        if not isinstance(route, dict):
            continue
        path: Path = ("spec", "routes", index)
        rule_text = _text(route.get("match"))
        capabilities: frozenset[str] = frozenset()
        listed = route.get("middlewares")
        for reference in listed if isinstance(listed, list) else ():
            capabilities |= middlewares.of_crd(reference, namespace)
        targets: list[Target] = []
        listed_services = route.get("services")
        for number, service in enumerate(
            listed_services if isinstance(listed_services, list) else ()
        ):
            if isinstance(service, dict):
                targets.append(
                    _crd_target(service, namespace, services, (*path, "services", number))
                )
        tokens = parse_rule(rule_text) if rule_text else None
        yield Router(
            document=document,
            path=path,
            label=_route_label(document, index),
            protocol=protocol,
            rule=rule_text,
            rule_path=(*path, "match"),
            tokens=tuple(tokens) if tokens is not None else None,
            priority=_priority(route.get("priority")),
            entrypoints=entrypoints,
            tls=tls,
            tls_path=("spec", "tls") if tls is not None else ("spec",),
            capabilities=capabilities,
            middleware_path=(*path, "middlewares") if listed is not None else path,
            targets=tuple(targets),
            namespace=namespace,
            resource=None,
        )


def _route_label(document: Document, index: int) -> str:
    where = f"{document.namespace}/{document.name}" if document.namespace else document.name
    return f"{document.kind} {where} routes[{index}]"


def _crd_target(
    service: dict[str, Any],
    namespace: str,
    services: dict[tuple[str, str], Document],
    path: Path,
) -> Target:
    name = _text(service.get("name"))
    kind = _text(service.get("kind")) or "Service"
    port = service.get("port")
    names = {name.lower()}
    ports: set[int] = set()
    number = _int(port)
    if number is not None:
        ports.add(number)
    elif isinstance(port, str):
        names.add(port.lower())
    own = _text(service.get("namespace")) or namespace
    found = services.get((own, name)) if kind == "Service" else None
    if found is not None:
        for item in _service_port_entries(found):
            if port is None or port in (item.get("port"), item.get("name")):
                for key in ("port", "targetPort"):
                    value = item.get(key)
                    number = _int(value)
                    if number is not None:
                        ports.add(number)
                    elif isinstance(value, str):
                        names.add(value.lower())
                if isinstance(item.get("name"), str):
                    names.add(item["name"].lower())
    return Target(name, kind, path, frozenset(names), frozenset(ports))


def _service_port_entries(service: Document) -> list[dict[str, Any]]:
    ports = service.get("spec", "ports")
    return [p for p in ports if isinstance(p, dict)] if isinstance(ports, list) else []


# --------------------------------------------------------------------------- entrypoints


@dataclass(frozen=True, slots=True)
class Entrypoints:
    """Which entrypoint names serve TLS and which plain HTTP (names and the catalog)."""

    tls: frozenset[str]
    plain: frozenset[str]
    resolvers: frozenset[str]  # the catalog's certificate resolvers (empty: unknown)

    def is_tls(self, name: str) -> bool:
        lower = name.lower()
        if name in self.tls:
            return True
        if "insecure" in lower or name in self.plain:
            return False
        return any(hint in lower for hint in ("secure", "https", "443"))

    def is_plain(self, name: str) -> bool:
        lower = name.lower()
        if name in self.plain:
            return True
        if name in self.tls:
            return False
        return lower in ("web", "http") or "insecure" in lower


def entrypoints(context: CheckContext) -> Entrypoints:
    """The entrypoint roles, from names and the catalog's Traefik services."""
    tls: set[str] = set()
    plain: set[str] = set()
    resolvers: set[str] = set()
    if context.catalog is not None:
        for service in context.catalog.services.values():
            settings = service.spec.traefik
            if settings is None:
                continue
            resolvers.update(settings.certificate_resolvers)
            for entrypoint in settings.entrypoints:
                port = entrypoint.address.split("/", 1)[0].rsplit(":", 1)[-1]
                if port == "443":
                    tls.add(entrypoint.name)
                elif port == "80":
                    plain.add(entrypoint.name)
    return Entrypoints(frozenset(tls), frozenset(plain), frozenset(resolvers))


def _overlap(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...] | None:
    """The entrypoints two routers share; () for "every one", None when they share none."""
    if not first:
        return second
    if not second:
        return first
    shared = tuple(name for name in first if name in second)
    return shared or None


# --------------------------------------------------------------------------- rules


@rule(
    "traefik.tls-certificate",
    "Routers on the TLS entrypoint have TLS and a certificate resolver",
    Severity.ERROR,
    rationale=(
        "A router on the HTTPS entrypoint without a tls section serves plain HTTP on port 443 "
        "(browsers fail), and one without a certificate resolver or secret is served Traefik's "
        "self-signed default certificate. TLS entrypoints are told by name (`secure`, `https`, "
        "`443`) and by the catalog's Traefik entrypoints on :443. TLS or a default "
        "certificate set on the entrypoint in static configuration (`entryPoints.websecure."
        "http.tls`) is invisible to the check, so routers say it themselves; only a TLSStore "
        "or file-provider certificate in the change set stands in for a resolver. When the "
        "catalog lists the platform's certificate resolvers, a resolver not among them is an "
        "error too."
    ),
    remediation=(
        "Add `tls: {certResolver: letsencrypt}` to the router (file provider) or "
        "`spec.tls.certResolver` / `spec.tls.secretName` to the IngressRoute, using a resolver "
        "the Traefik instance defines; for TCP routers that pass TLS through, set "
        "`tls.passthrough: true`."
    ),
)
def tls_certificate(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    model = build(changeset)
    roles = entrypoints(context)
    # An IngressRoute's tls is shared by its routes: its problems are told once.
    told: set[tuple[str, int]] = set()
    for router in model.routers:
        secure = [name for name in router.entrypoints if roles.is_tls(name)]
        if not secure and (router.entrypoints or not router.has_tls):
            continue
        if router.resource is None:
            owner = (router.document.file, router.document.index)
            if owner in told:
                continue
            told.add(owner)
        on = f"entrypoint {', '.join(secure)}" if secure else "every entrypoint"
        if not router.has_tls:
            yield router.hit(f"{router.owner} is on TLS {on} but has no tls section")
            continue
        if _is_true(router.tls_value("passthrough")):
            continue
        resolver = router.tls_value("certResolver")
        if isinstance(resolver, str) and resolver:
            if roles.resolvers and resolver not in roles.resolvers:
                known = ", ".join(sorted(roles.resolvers))
                yield router.hit(
                    f"{router.owner} uses certResolver {resolver!r}, which no Traefik of the "
                    f"catalog defines (it has {known})",
                    (*router.tls_path, _field(router.tls, "certResolver")[0]),
                )
            continue
        if router.tls_value("secretName") or model.default_certificate:
            continue
        yield router.hit(
            f"{router.owner} has tls but no certResolver or secretName: Traefik serves its "
            "self-signed default certificate",
            router.tls_path,
        )


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


@rule(
    "traefik.https-redirect",
    "Plain HTTP redirects to HTTPS",
    Severity.ERROR,
    rationale=(
        "A router answering plain HTTP serves Odoo logins and session cookies in clear text "
        "to anyone on the path. Every HTTP router on the plain entrypoint (`web`, `http`, or "
        "the catalog's :80 entrypoint), or on every entrypoint because it names none, must "
        "redirect to HTTPS with a redirectScheme middleware. An entrypoint-level redirection "
        "(`entryPoints.web.http.redirections`) is static configuration the check cannot see: "
        "with one, keep routers off `web` altogether. ACME HTTP-01 challenge routers are exempt."
    ),
    remediation=(
        "Attach a `redirectScheme` middleware with `scheme: https` and `permanent: true` to the "
        "router on `web`, or move the router to the TLS entrypoint only "
        "(`entryPoints: [websecure]`)."
    ),
)
def https_redirect(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    model = build(changeset)
    roles = entrypoints(context)
    for router in model.routers:
        if router.protocol != "http" or router.has_tls or router.redirects or router.acme:
            continue
        if any(t.dashboard for t in router.targets):
            continue  # traefik.dashboard reports a dashboard without TLS
        plain = [name for name in router.entrypoints if roles.is_plain(name)]
        if router.entrypoints and not plain:
            continue
        on = f"entrypoint {', '.join(plain)}" if plain else "every entrypoint (it names none)"
        yield router.hit(
            f"{router.label} serves plain HTTP on {on} without redirecting to HTTPS",
            router.middleware_path,
        )


def _odoo_web_routers(model: Model) -> Iterator[Router]:
    for router in model.routers:
        if router.protocol == "http" and router.odoo_web and not router.redirects:
            yield router


@rule(
    "traefik.odoo-security-headers",
    "Odoo routers set security headers",
    Severity.WARNING,
    rationale=(
        "Odoo sets no HSTS, frame or content-type headers itself, so without a headers "
        "middleware its login page can be framed (clickjacking), downgraded to HTTP on the "
        "next visit, or have uploads sniffed as HTML. A headers middleware counts when it "
        "sets a security header (stsSeconds, frameDeny, contentTypeNosniff, "
        "contentSecurityPolicy...). Odoo routers are those targeting a service named like "
        "`odoo` or its ports 8069/8072; redirect-only routers are skipped."
    ),
    remediation=(
        "Attach a headers middleware, e.g. `headers: {stsSeconds: 31536000, "
        "stsIncludeSubdomains: true, frameDeny: true, contentTypeNosniff: true, "
        "referrerPolicy: strict-origin-when-cross-origin}`."
    ),
)
def odoo_security_headers(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for router in _odoo_web_routers(build(changeset)):
        if SECURITY_HEADERS not in router.capabilities:
            yield router.hit(
                f"Odoo {router.label} has no security-headers middleware (a headers "
                "middleware setting stsSeconds, frameDeny or contentTypeNosniff)",
                router.middleware_path,
            )


@rule(
    "traefik.odoo-rate-limit",
    "Odoo routers are rate limited",
    Severity.WARNING,
    rationale=(
        "Odoo's `/web/login`, `/web/database/*` and JSON-RPC endpoints are cheap to call and "
        "expensive to answer: without a rate limit one client can brute-force passwords or "
        "exhaust the workers every tenant on the instance shares. Odoo routers are those "
        "targeting a service named like `odoo` or its ports 8069/8072; redirect-only routers "
        "are skipped."
    ),
    remediation=(
        "Attach a `rateLimit` middleware (e.g. `average: 50`, `burst: 100`, keyed on the client "
        "IP with `sourceCriterion.ipStrategy.depth` set when Traefik sits behind a load "
        "balancer)."
    ),
)
def odoo_rate_limit(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for router in _odoo_web_routers(build(changeset)):
        if RATE_LIMIT not in router.capabilities:
            yield router.hit(
                f"Odoo {router.label} has no rateLimit middleware", router.middleware_path
            )


@rule(
    "traefik.router-shadowing",
    "No two routers have the same rule and priority",
    Severity.ERROR,
    rationale=(
        "When two routers on the same entrypoint have the same rule and priority, which one "
        "gets the requests is not defined by the configuration: a tenant's IngressRoute "
        "copying another tenant's host takes over (or loses) that host's traffic. Compared "
        "across every document of the change set, file provider and IngressRoutes together, "
        "after normalising quotes, spacing, the order of Host arguments and of `&&` operands; "
        "TLS and plain-HTTP routers are compared apart (they never match the same request), "
        "and two routers without a priority count as equal even when formatting makes "
        "Traefik's default priority (the rule's length) differ. The same host with a "
        "different path is fine."
    ),
    remediation=(
        "Give each host to one router (one tenant), or tell Traefik which router wins with "
        "distinct `priority` values; remove the copy that should not receive the traffic."
    ),
)
def router_shadowing(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    groups: dict[tuple[str, bool, str, int | None], list[Router]] = defaultdict(list)
    for router in build(changeset).routers:
        if router.rule.strip():
            key = (router.protocol, router.has_tls, normalise_rule(router.rule), router.priority)
            groups[key].append(router)
    for (_protocol, _tls, _rule, priority), routers in groups.items():
        level = f"priority {priority}" if priority is not None else "the default priority"
        for router, other in _rivals(routers):
            shared = _overlap(router.entrypoints, other.entrypoints) or ()
            line = other.document.locate(other.rule_path)
            where = f"{other.document.file}:{line}" if line else other.document.file
            on = f" on {', '.join(shared)}" if shared else ""
            yield router.hit(
                f"{router.label} has the same rule ({router.rule}) and {level} as "
                f"{other.label} ({where}){on}: either may receive the other's requests",
                router.rule_path,
            )


def _rivals(routers: Sequence[Router]) -> Iterator[tuple[Router, Router]]:
    """Each router after the first of its group sharing an entrypoint with an earlier one,
    with that earlier router; linear, however many routers share one rule."""
    first: Router | None = None  # the first router of the group
    everywhere: Router | None = None  # the first listening on every entrypoint
    by_entrypoint: dict[str, Router] = {}
    for router in routers:
        if not router.entrypoints:
            other = first
        else:
            other = everywhere or next(
                (by_entrypoint[name] for name in router.entrypoints if name in by_entrypoint),
                None,
            )
        if other is not None:
            yield router, other
        first = first or router
        if not router.entrypoints:
            everywhere = everywhere or router
        for name in router.entrypoints:
            by_entrypoint.setdefault(name, router)


def _series_major(series: str) -> int | None:
    head = series.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _old_series(context: CheckContext) -> tuple[frozenset[str], bool]:
    """Namespaces whose every tenant runs Odoo before 16.0, and whether --tenant's does."""
    catalog = context.catalog
    if catalog is None:
        return frozenset(), False
    by_namespace: dict[str, list[int]] = defaultdict(list)
    for tenant in catalog.tenants.values():
        major = _series_major(tenant.spec.odoo.series)
        if major is not None:
            by_namespace[tenant.spec.namespace].append(major)
    old = frozenset(
        namespace
        for namespace, majors in by_namespace.items()
        if majors and max(majors) < WEBSOCKET_SERIES
    )
    own = catalog.tenants.get(context.tenant) if context.tenant else None
    own_major = _series_major(own.spec.odoo.series) if own is not None else None
    return old, own_major is not None and own_major < WEBSOCKET_SERIES


@rule(
    "traefik.odoo-websocket",
    "Odoo 16+ routes /websocket to the gevent port",
    Severity.ERROR,
    rationale=(
        "From 16.0, Odoo's live features (discuss, notifications, the POS and multi-user "
        "editing) use a websocket at `/websocket`, which only the gevent process on port "
        "8072 serves when Odoo runs with workers; routed to 8069 it fails and the web client "
        "keeps reconnecting. So every host the change set routes to Odoo's HTTP port needs a "
        "`/websocket` router to 8072 (or to a service named like gevent or longpolling); a "
        "`/websocket` router without a Host serves every host. The series comes from the "
        "catalog: skipped when every tenant of the router's namespace (or the --tenant, for "
        "file-provider routers) runs a series before 16.0; without a catalog, 16.0 or later is "
        "assumed. An instance in threaded mode (`workers = 0`) serves the websocket on 8069 "
        "itself: waive the rule for it."
    ),
    remediation=(
        "Add a router for the same host with ``PathPrefix(`/websocket`)`` to the Odoo "
        "service's port 8072 (the gevent port, `gevent_port` in odoo.conf) next to the one "
        "sending the rest to 8069."
    ),
)
def odoo_websocket(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    model = build(changeset)
    old_namespaces, old_tenant = _old_series(context)
    web: dict[str, list[Router]] = defaultdict(list)
    socket_hosts: set[str] = set()
    socket_everywhere = False  # a /websocket router for every host (no Host matcher)
    for router in model.routers:
        if router.protocol != "http" or not router.odoo or router.redirects:
            continue
        if router.namespace in old_namespaces or (not router.namespace and old_tenant):
            continue
        if router.websocket:
            socket_hosts.update(router.hosts)
            socket_everywhere = socket_everywhere or not router.hosts
            http_only = any(t.http for t in router.targets)
            if http_only and not any(t.gevent for t in router.targets):
                yield router.hit(
                    f"{router.label} routes /websocket to Odoo's HTTP port, not the gevent "
                    f"port {ODOO_GEVENT_PORT}",
                    router.path,
                )
        elif router.odoo_web:
            for host in router.hosts:
                web[host].append(router)
    reported: set[tuple[str, Path]] = set()
    for host, routers in web.items():
        if host in socket_hosts or socket_everywhere:
            continue
        first = routers[0]
        key = (first.document.file, (first.document.index, *first.path))
        if key in reported:
            continue
        reported.add(key)
        missing = sorted(h for h in first.hosts if h not in socket_hosts)
        yield first.hit(
            f"{first.label} routes Odoo for {', '.join(missing)} but no router sends "
            f"/websocket to the gevent port {ODOO_GEVENT_PORT}",
            first.rule_path,
        )


@rule(
    "traefik.dashboard",
    "The Traefik dashboard and API are not exposed insecurely",
    Severity.ERROR,
    rationale=(
        "The dashboard and API (`api@internal`, `dashboard@internal`) show every router, "
        "service and middleware, host names and backends of every tenant included: a map for "
        "an attacker. A router exposing them must authenticate (basicAuth, digestAuth or "
        "forwardAuth middleware, directly or in a chain) and be served over TLS."
    ),
    remediation=(
        "Attach an authentication middleware (forwardAuth to the platform's SSO, or "
        "basicAuth with a secret users file) and put the router on the TLS entrypoint with "
        "`tls`; better, reach the dashboard only through `kubectl port-forward`."
    ),
)
def dashboard(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for router in build(changeset).routers:
        exposed = [t.name for t in router.targets if t.dashboard]
        if router.protocol != "http" or not exposed:
            continue
        problems = []
        if AUTH not in router.capabilities:
            problems.append("no authentication middleware")
        if not router.has_tls:
            problems.append("no TLS")
        if problems:
            yield router.hit(
                f"{router.label} exposes {', '.join(exposed)} with {' and '.join(problems)}"
            )


def _targets_of(document: Document) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    routes = document.get("spec", "routes")
    for index, route in enumerate(routes if isinstance(routes, list) else ()):
        listed = route.get("services") if isinstance(route, dict) else None
        for number, service in enumerate(listed if isinstance(listed, list) else ()):
            if isinstance(service, dict):
                path: Path = ("spec", "routes", index, "services", number)
                yield _route_label(document, index), path, service


@rule(
    "traefik.route-targets-service",
    "IngressRoutes target Services of the change set",
    Severity.ERROR,
    rationale=(
        "An IngressRoute naming a Service that does not exist (a typo, a renamed Service, the "
        "wrong namespace) or a port the Service does not expose answers every request with "
        "an error; the same goes for a TraefikService. Like the Kubernetes pack's Service "
        "checks, this only judges namespaces the change set brings Services (or "
        "TraefikServices) for: a change touching only the IngressRoute is not failed for "
        "Services it does not carry."
    ),
    remediation=(
        "Name an existing Service (and one of its ports, by number or name) in the "
        "IngressRoute's namespace, or add the Service to the change."
    ),
)
def route_targets_service(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    model = build(changeset)
    for document in changeset.of_kind(*ROUTE_KINDS, "IngressRouteUDP"):
        if not _is_traefik_crd(document):
            continue
        for label, path, service in _targets_of(document):
            name = _text(service.get("name"))
            kind = _text(service.get("kind")) or "Service"
            namespace = _text(service.get("namespace")) or document.namespace
            shown = f"{namespace}/{name}" if namespace else name
            if kind == "TraefikService":
                if "@" in name or namespace not in model.traefik_service_namespaces:
                    continue
                if (namespace, name) not in model.traefik_services:
                    yield Hit(
                        document,
                        (*path, "name"),
                        f"{label} targets TraefikService {shown}, which the change set does "
                        "not have",
                    )
                continue
            if kind != "Service" or namespace not in model.service_namespaces:
                continue
            found = model.services.get((namespace, name))
            if found is None:
                present = sorted(n for ns, n in model.services if ns == namespace)
                yield Hit(
                    document,
                    (*path, "name"),
                    f"{label} targets Service {shown}, which the change set does not have "
                    f"(it has {', '.join(present[:10])} in {namespace or 'that namespace'})",
                )
                continue
            yield from _port_problem(document, label, path, service, found, shown)


def _port_problem(
    document: Document,
    label: str,
    path: Path,
    service: dict[str, Any],
    found: Document,
    shown: str,
) -> Iterable[Hit]:
    port = service.get("port")
    if port is None or found.get("spec", "type") == "ExternalName":
        return
    entries = _service_port_entries(found)
    if not entries:
        return
    for entry in entries:
        if port in (entry.get("port"), entry.get("name")) or (
            _int(port) is not None and _int(port) == _int(entry.get("port"))
        ):
            return
    exposed = ", ".join(
        f"{entry.get('port')} ({entry['name']})"
        if isinstance(entry.get("name"), str)
        else str(entry.get("port"))
        for entry in entries
    )
    yield Hit(
        document,
        (*path, "port"),
        f"{label} targets port {port} of Service {shown}, which exposes {exposed}",
    )


RULES = (
    tls_certificate,
    https_redirect,
    odoo_security_headers,
    odoo_rate_limit,
    router_shadowing,
    odoo_websocket,
    dashboard,
    route_targets_service,
)
