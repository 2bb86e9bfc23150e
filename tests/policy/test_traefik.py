"""Traefik rules: TLS, redirects, Odoo middlewares and websockets, shadowing, dashboard, targets."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from changegate.adapters import policy_inputs
from changegate.domain import catalog
from changegate.domain.policy.changeset import ChangeSet
from changegate.domain.policy.engine import Report
from changegate.domain.policy.model import Document, Format, Severity
from changegate.domain.policy.rules import traefik
from changegate.domain.policy.rules.traefik import RULES, normalise_rule
from tests import catalog_builders as b
from tests.policy.helpers import check, rule_ids


def docs(text: str, file: str = "routes.yaml") -> list[Document]:
    """Documents as the input adapter reads them (YAML, or TOML by the file name)."""
    found = policy_inputs.parse(text.encode(), file)
    assert all(d is not None for d in found), text
    return [d for d in found if d is not None]


def run(rule_id: str, *documents: Document, **context: Any) -> Report:
    rules = [each for each in RULES if each.info.id == rule_id]
    assert rules, rule_id
    return check(rules, list(documents), **context)


def messages(report: Report) -> list[str]:
    return [f.message for f in report.findings]


def make_catalog(series: str = "17.0", **traefik_settings: Any) -> catalog.Catalog:
    """The builders' platform: tenant acme in namespace odoo-mt-1 on the given Odoo series,
    and traefik-1 with the given settings."""
    files = b.platform()
    tenant = b.find(files, "Tenant", "acme")
    tenant["spec"]["odoo"]["series"] = series
    b.find(files, "Service", "traefik-1")["spec"]["traefik"].update(traefik_settings)
    return catalog.build(b.documents(files), digest="sha256:" + "0" * 64, commit=None, root="r")


SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: odoo
  namespace: {ns}
spec:
  selector:
    app.kubernetes.io/name: odoo
  ports:
    - name: http
      port: 8069
      targetPort: 8069
    - name: longpolling
      port: 8072
      targetPort: 8072
"""
MIDDLEWARES = """\
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: security-headers
  namespace: {ns}
spec:
  headers:
    stsSeconds: 31536000
    frameDeny: true
    contentTypeNosniff: true
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: rate-limit
  namespace: {ns}
spec:
  rateLimit:
    average: 50
    burst: 100
"""


def ingressroute(
    *routes: str,
    name: str = "odoo",
    ns: str = "tenant-acme",
    entrypoints: str = "[websecure]",
    tls: str = "{certResolver: letsencrypt}",
    api: str = "traefik.io/v1alpha1",
    kind: str = "IngressRoute",
) -> str:
    body = "".join(f"    - {route}\n" for route in routes)
    return (
        f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
        f"spec:\n  entryPoints: {entrypoints}\n  routes:\n{body}"
        + (f"  tls: {tls}\n" if tls else "")
    )


def odoo_route(
    host: str = "acme.example.com",
    port: int | str = 8069,
    path: str = "",
    middlewares: str = "[{name: security-headers}, {name: rate-limit}]",
    service: str = "odoo",
) -> str:
    rule = f"Host(`{host}`)" + (f" && PathPrefix(`{path}`)" if path else "")
    return (
        f"{{match: '{rule}', kind: Rule, services: [{{name: {service}, port: {port}}}], "
        f"middlewares: {middlewares}}}"
    )


def good(ns: str = "tenant-acme", host: str = "acme.example.com") -> list[Document]:
    """A tenant routed the way every rule wants it."""
    text = "---\n".join(
        [
            SERVICE.format(ns=ns),
            MIDDLEWARES.format(ns=ns),
            ingressroute(
                odoo_route(host, 8072, "/websocket", "[{name: security-headers}]"),
                odoo_route(host),
                ns=ns,
            ),
        ]
    )
    return docs(text, f"{ns}.yaml")


# --------------------------------------------------------------------------- documentation


def test_every_rule_is_documented_and_unique() -> None:
    ids = [each.info.id for each in RULES]
    assert len(ids) == len(set(ids))
    for each in RULES:
        info = each.info
        assert info.pack == "traefik"
        assert len(info.rationale) > 80 and len(info.remediation) > 30, info.id
        assert info.aliases == ()  # no other tool has equivalent Traefik checks


def test_a_well_routed_tenant_passes_every_rule() -> None:
    assert rule_ids(check(RULES, good())) == []


# --------------------------------------------------------------------------- rule normalising


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Host(`a.example.com`)", 'Host("a.example.com")'),
        ("Host(`a.example.com`)", "  Host( `A.example.com` )  "),
        ("Host(`a.com`, `b.com`)", "Host(`b.com`,`a.com`)"),
        (
            "Host(`a.com`) && PathPrefix(`/web`)",
            'PathPrefix(`/web`)   &&   Host("a.com")',
        ),
        ("Host(`a.com`) || Host(`b.com`)", "Host(`a.com`)||Host(`b.com`)"),
    ],
)
def test_rules_spelled_differently_normalise_the_same(first: str, second: str) -> None:
    assert normalise_rule(first) == normalise_rule(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Host(`a.com`)", "Host(`b.com`)"),
        ("Host(`a.com`) && PathPrefix(`/web`)", "Host(`a.com`) && PathPrefix(`/shop`)"),
        (
            "Host(`a.com`) || Host(`b.com`) && Path(`/x`)",
            "Host(`b.com`) || Host(`a.com`) && Path(`/x`)",
        ),
        ("Path(`/A`)", "Path(`/a`)"),
        ("Headers(`a`, `b`)", "Headers(`b`, `a`)"),
    ],
)
def test_different_rules_stay_different(first: str, second: str) -> None:
    assert normalise_rule(first) != normalise_rule(second)


@pytest.mark.parametrize(
    "text", ["Host(`a.com`", "Host(a.com)", "Host(`a`, )", "Host(`a`) Path", ""]
)
def test_unparsable_rules_fall_back_to_their_spacing(text: str) -> None:
    assert normalise_rule(text) == " ".join(text.split())


# --------------------------------------------------------------------------- shadowing

FILE_ROUTER = """\
http:
  routers:
    odoo-acme:
      rule: {rule}
      entryPoints: {entrypoints}
      service: odoo-acme
      tls:
        certResolver: letsencrypt
{extra}  services:
    odoo-acme:
      loadBalancer:
        servers:
          - url: http://10.0.1.12:8069
"""


def file_router(
    rule: str = 'Host("acme.example.com")', entrypoints: str = "[websecure]", extra: str = ""
) -> list[Document]:
    return docs(FILE_ROUTER.format(rule=rule, entrypoints=entrypoints, extra=extra), "vm.yaml")


def test_shadowing_across_the_file_provider_and_an_ingressroute() -> None:
    hijack = docs(ingressroute(odoo_route(), ns="tenant-globex"), "globex.yaml")
    report = run("traefik.router-shadowing", *file_router(), *hijack)
    [finding] = report.findings
    assert finding.severity is Severity.ERROR
    assert finding.file == "globex.yaml"
    assert finding.resource.kind == "IngressRoute"
    assert finding.resource.namespace == "tenant-globex"
    assert finding.line == 9  # the route (its match, written inline)
    assert finding.message == (
        "IngressRoute tenant-globex/odoo routes[0] has the same rule "
        "(Host(`acme.example.com`)) and the default priority as router odoo-acme@file "
        "(vm.yaml:4) on websecure: either may receive the other's requests"
    )


def test_shadowing_within_one_file_provider_file_names_the_router() -> None:
    extra = (
        "    odoo-globex:\n"
        "      rule: Host(`ACME.example.com`)\n"
        "      entryPoints: [websecure, websecure-v6]\n"
        "      service: odoo-acme\n"
        "      priority: 0\n"
        "      tls: {certResolver: letsencrypt}\n"
    )
    report = run("traefik.router-shadowing", *file_router(extra=extra))
    [finding] = report.findings
    assert finding.resource.kind == "Router"
    assert finding.resource.name == "odoo-globex@file"
    assert finding.line == 10  # its rule


@pytest.mark.parametrize(
    ("file_rule", "file_entrypoints", "route_extra", "shadowed"),
    [
        ('Host("acme.example.com")', "[websecure]", "", True),
        # Explicit and equal priorities are the same priority.
        ('Host("acme.example.com")', "[websecure]", "priority: 10", False),
        # The same host with a different path is fine.
        ("Host(`acme.example.com`) && PathPrefix(`/shop`)", "[websecure]", "", False),
        # Different entrypoints never see the same request.
        ('Host("acme.example.com")', "[internal]", "", False),
        # A router naming no entrypoint listens on all of them.
        ('Host("acme.example.com")', "[]", "", True),
    ],
)
def test_shadowing_cases(
    file_rule: str, file_entrypoints: str, route_extra: str, shadowed: bool
) -> None:
    route = odoo_route()
    if route_extra:
        route = route[:-1] + f", {route_extra}}}"
    ingress = docs(ingressroute(route, ns="tenant-globex"), "globex.yaml")
    routers = file_router(file_rule, file_entrypoints)
    report = run("traefik.router-shadowing", *routers, *ingress)
    assert bool(report.findings) is shadowed


def test_same_explicit_priority_shadows_and_different_priorities_do_not() -> None:
    first = ingressroute(odoo_route()[:-1] + ", priority: 10}", ns="tenant-acme")
    same = ingressroute(odoo_route()[:-1] + ", priority: 10}", ns="tenant-globex")
    other = ingressroute(odoo_route()[:-1] + ", priority: 20}", ns="tenant-globex")
    report = run("traefik.router-shadowing", *docs(first, "a.yaml"), *docs(same, "b.yaml"))
    assert "and priority 10 as IngressRoute tenant-acme/odoo routes[0]" in messages(report)[0]
    assert (
        run("traefik.router-shadowing", *docs(first, "a.yaml"), *docs(other, "b.yaml")).findings
        == ()
    )


def test_tls_and_plain_routers_for_one_host_do_not_shadow() -> None:
    redirect = ingressroute(
        odoo_route(middlewares="[{name: redirect-https}]"),
        name="odoo-http",
        entrypoints="[]",
        tls="",
    )
    assert run("traefik.router-shadowing", *good(), *docs(redirect, "http.yaml")).findings == ()


# --------------------------------------------------------------------------- TLS


def test_router_on_the_tls_entrypoint_without_tls_is_told_once_per_ingressroute() -> None:
    text = ingressroute(
        odoo_route(port=8072, path="/websocket"), odoo_route(), entrypoints="[websecure]", tls=""
    )
    [finding] = run("traefik.tls-certificate", *docs(text)).findings
    assert finding.message == (
        "IngressRoute tenant-acme/odoo is on TLS entrypoint websecure but has no tls section"
    )
    assert finding.line == 9  # the first route


@pytest.mark.parametrize(
    ("tls", "passes"),
    [
        ("{certResolver: letsencrypt}", True),
        ("{secretName: acme-example-com-tls}", True),
        ("{options: {name: modern}}", False),
        ("{}", False),
    ],
)
def test_ingressroute_tls_needs_a_resolver_or_secret(tls: str, passes: bool) -> None:
    report = run("traefik.tls-certificate", *docs(ingressroute(odoo_route(), tls=tls)))
    assert (report.findings == ()) is passes
    if not passes:
        assert "self-signed default certificate" in report.findings[0].message


def test_a_default_certificate_in_the_change_set_stands_in_for_a_resolver() -> None:
    store = (
        "apiVersion: traefik.io/v1alpha1\nkind: TLSStore\nmetadata:\n  name: default\n"
        "  namespace: traefik\nspec:\n  defaultCertificate:\n    secretName: wildcard-tls\n"
    )
    routes = docs(ingressroute(odoo_route(), tls="{}"))
    assert run("traefik.tls-certificate", *routes, *docs(store, "store.yaml")).findings == ()
    certificates = (
        "tls:\n  certificates:\n"
        "    - certFile: /certs/wildcard.crt\n      keyFile: /certs/wildcard.key\n"
    )
    assert run("traefik.tls-certificate", *routes, *docs(certificates, "tls.yaml")).findings == ()


def test_entrypoints_from_the_catalog() -> None:
    platform = make_catalog(
        entrypoints=[{"name": "web", "address": ":80"}, {"name": "edge", "address": ":443"}],
        certificate_resolvers=["letsencrypt", "internal-ca"],
    )
    no_tls = docs(ingressroute(odoo_route(), entrypoints="[edge]", tls=""))
    assert run("traefik.tls-certificate", *no_tls).findings == ()  # unknown name, no catalog
    assert len(run("traefik.tls-certificate", *no_tls, catalog=platform).findings) == 1
    wrong = docs(ingressroute(odoo_route(), tls="{certResolver: letsencrypt-staging}"))
    [message] = messages(run("traefik.tls-certificate", *wrong, catalog=platform))
    assert message == (
        "IngressRoute tenant-acme/odoo uses certResolver 'letsencrypt-staging', which no "
        "Traefik of the catalog defines (it has internal-ca, letsencrypt)"
    )


def test_tcp_routers_may_pass_tls_through() -> None:
    text = (
        "tcp:\n  routers:\n    postgres:\n      rule: HostSNI(`pg.example.com`)\n"
        "      entryPoints: [websecure]\n      service: pg\n      tls:\n        passthrough: true\n"
        "    redis:\n      rule: HostSNI(`redis.example.com`)\n"
        "      entryPoints: [websecure]\n      service: redis\n"
    )
    report = run("traefik.tls-certificate", *docs(text))
    assert messages(report) == [
        "TCP router redis@file is on TLS entrypoint websecure but has no tls section"
    ]
    assert report.findings[0].resource.kind == "TCPRouter"


def test_toml_file_provider_lines() -> None:
    text = (
        "[http.routers.odoo]\n"
        '  rule = "Host(`acme.example.com`)"\n'
        '  entryPoints = ["websecure"]\n'
        '  service = "odoo"\n'
        "  [http.routers.odoo.tls]\n"
        '    options = "modern"\n'
    )
    [document] = docs(text, "dynamic.toml")
    assert document.format is Format.TRAEFIK
    [finding] = run("traefik.tls-certificate", document).findings
    assert finding.line == 5
    assert finding.file == "dynamic.toml"


def test_an_empty_tls_key_turns_tls_on() -> None:
    text = (
        "http:\n  routers:\n    odoo:\n      rule: Host(`a.example.com`)\n"
        "      entryPoints: [websecure]\n      service: odoo\n      tls:\n"
    )
    [message] = messages(run("traefik.tls-certificate", *docs(text)))
    assert message.startswith("router odoo@file has tls but no certResolver")


def test_option_names_are_matched_without_regard_to_case() -> None:
    text = (
        "http:\n  routers:\n    odoo:\n      Rule: Host(`a.example.com`)\n"
        "      entrypoints: [websecure]\n      service: odoo\n"
        "      TLS:\n        certresolver: letsencrypt\n"
    )
    assert run("traefik.tls-certificate", *docs(text)).findings == ()


# --------------------------------------------------------------------------- redirect


def test_plain_router_without_redirect() -> None:
    text = ingressroute(odoo_route(middlewares="[]"), name="odoo-http", entrypoints="[web]", tls="")
    [finding] = run("traefik.https-redirect", *docs(text)).findings
    assert finding.message == (
        "IngressRoute tenant-acme/odoo-http routes[0] serves plain HTTP on entrypoint web "
        "without redirecting to HTTPS"
    )


def test_router_naming_no_entrypoint_serves_plain_http_too() -> None:
    text = ingressroute(odoo_route(), entrypoints="[]", tls="")
    [message] = messages(run("traefik.https-redirect", *docs(text)))
    assert "on every entrypoint (it names none)" in message
    with_tls = ingressroute(odoo_route(), entrypoints="[]")
    assert run("traefik.https-redirect", *docs(with_tls)).findings == ()


@pytest.mark.parametrize(
    ("middlewares", "redirects"),
    [
        ("[redirect-https]", True),
        ("[to-https@file]", True),
        ("[https-only]", False),  # a chain naming the redirect
        ("[http-scheme]", False),
        ("[tenant-acme-force-ssl@kubernetescrd]", True),
        ("[unknown@docker]", False),
        ("[https-redirect@docker]", True),  # defined elsewhere: counted by its name
    ],
)
def test_redirect_middlewares_are_resolved(middlewares: str, redirects: bool) -> None:
    text = f"""\
http:
  routers:
    odoo-http:
      rule: Host(`acme.example.com`)
      entryPoints: [web]
      service: noop@internal
      middlewares: {middlewares}
  middlewares:
    redirect-https:
      redirectScheme:
        scheme: https
    to-https:
      redirectScheme:
        permanent: true
    https-only:
      chain:
        middlewares: [compress, http-scheme]
    http-scheme:
      redirectScheme:
        scheme: http
"""
    crd = (
        "apiVersion: traefik.containo.us/v1alpha1\nkind: Middleware\nmetadata:\n"
        "  name: force-ssl\n  namespace: tenant-acme\nspec:\n  redirectScheme:\n"
        "    scheme: https\n"
    )
    report = run("traefik.https-redirect", *docs(text), *docs(crd, "crd.yaml"))
    assert (report.findings == ()) is redirects


def test_acme_challenge_router_is_exempt() -> None:
    text = (
        "http:\n  routers:\n    acme:\n"
        "      rule: PathPrefix(`/.well-known/acme-challenge/`)\n"
        "      entryPoints: [web]\n      service: acme-http@internal\n"
    )
    assert run("traefik.https-redirect", *docs(text)).findings == ()


# --------------------------------------------------------------------------- Odoo middlewares


def test_headers_middleware_must_set_a_security_header() -> None:
    text = MIDDLEWARES.format(ns="tenant-acme").replace(
        "    stsSeconds: 31536000\n    frameDeny: true\n    contentTypeNosniff: true\n",
        "    customRequestHeaders:\n      X-Forwarded-Proto: https\n",
    )
    routes = ingressroute(odoo_route())
    report = run("traefik.odoo-security-headers", *docs(text + "---\n" + routes))
    assert messages(report) == [
        "Odoo IngressRoute tenant-acme/odoo routes[0] has no security-headers middleware (a "
        "headers middleware setting stsSeconds, frameDeny or contentTypeNosniff)"
    ]
    assert report.findings[0].severity is Severity.WARNING


def test_middlewares_through_a_chain_and_across_namespaces() -> None:
    chain = (
        "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata:\n  name: odoo-defaults\n"
        "  namespace: tenant-acme\nspec:\n  chain:\n    middlewares:\n"
        "      - name: security-headers\n        namespace: shared\n      - name: rate-limit\n"
        "        namespace: shared\n"
    )
    shared = MIDDLEWARES.format(ns="shared")
    routes = ingressroute(odoo_route(middlewares="[{name: odoo-defaults}]"))
    documents = docs(chain + "---\n" + shared + "---\n" + routes)
    assert run("traefik.odoo-security-headers", *documents).findings == ()
    assert run("traefik.odoo-rate-limit", *documents).findings == ()


def test_file_router_using_crd_middlewares_by_provider_name() -> None:
    text = (
        "http:\n  routers:\n    odoo:\n      rule: Host(`acme.example.com`)\n"
        "      entryPoints: [websecure]\n      service: odoo\n      tls: {certResolver: le}\n"
        "      middlewares: [tenant-acme-security-headers@kubernetescrd, rl]\n"
        "  services:\n    odoo:\n      loadBalancer:\n        servers:\n"
        "          - url: http://odoo.internal:8069\n"
    )
    documents = [*docs(text, "file.yaml"), *docs(MIDDLEWARES.format(ns="tenant-acme"), "m.yaml")]
    assert run("traefik.odoo-security-headers", *documents).findings == ()
    assert len(run("traefik.odoo-rate-limit", *documents).findings) == 1


def test_self_referencing_chains_terminate() -> None:
    text = (
        "http:\n  routers:\n    odoo:\n      rule: Host(`a.example.com`)\n"
        "      service: odoo-web@kubernetes\n      middlewares: [loop]\n"
        "  middlewares:\n    loop:\n      chain:\n        middlewares: [loop, loop@file]\n"
    )
    report = check(RULES, docs(text))
    assert "traefik.odoo-rate-limit" in rule_ids(report)


def test_only_odoo_routers_need_odoo_middlewares() -> None:
    text = ingressroute(
        "{match: Host(`grafana.example.com`), kind: Rule, services: [{name: grafana, port: 3000}]}"
    )
    assert run("traefik.odoo-rate-limit", *docs(text)).findings == ()
    redirect = ingressroute(
        odoo_route(middlewares="[{name: redirect}]"), entrypoints="[web]", tls=""
    )
    assert run("traefik.odoo-rate-limit", *docs(redirect)).findings == ()


# --------------------------------------------------------------------------- websocket


def test_odoo_without_websocket_router() -> None:
    text = ingressroute(odoo_route())
    [finding] = run("traefik.odoo-websocket", *docs(text)).findings
    assert finding.message == (
        "IngressRoute tenant-acme/odoo routes[0] routes Odoo for acme.example.com but no "
        "router sends /websocket to the gevent port 8072"
    )
    assert finding.severity is Severity.ERROR


def test_websocket_routed_to_the_http_port() -> None:
    text = ingressroute(odoo_route(port=8069, path="/websocket"), odoo_route())
    assert messages(run("traefik.odoo-websocket", *docs(text))) == [
        "IngressRoute tenant-acme/odoo routes[0] routes /websocket to Odoo's HTTP port, not the "
        "gevent port 8072"
    ]


@pytest.mark.parametrize(
    "route",
    [
        odoo_route(port=8072, path="/websocket"),
        odoo_route(port="longpolling", path="/websocket"),  # a named Service port
        odoo_route(service="odoo-gevent", port=80, path="/websocket"),
    ],
)
def test_websocket_router_to_the_gevent_port(route: str) -> None:
    text = SERVICE.format(ns="tenant-acme") + "---\n" + ingressroute(route, odoo_route())
    assert run("traefik.odoo-websocket", *docs(text)).findings == ()


def test_websocket_router_for_every_host_and_of_unknown_port() -> None:
    everywhere = ingressroute(
        "{match: PathPrefix(`/websocket`), kind: Rule, services: [{name: odoo, port: 8072}]}",
        name="websocket",
        ns="odoo-mt-1",
    )
    tenants = ingressroute(odoo_route(), odoo_route("globex.example.com"), ns="odoo-mt-1")
    assert run("traefik.odoo-websocket", *docs(everywhere + "---\n" + tenants)).findings == ()
    # Defined elsewhere, its port unknown: not blamed for sending /websocket to 8069.
    text = (
        "http:\n  routers:\n    ws:\n"
        "      rule: Host(`acme.example.com`) && PathPrefix(`/websocket`)\n"
        "      service: odoo-acme@docker\n"
    )
    assert run("traefik.odoo-websocket", *docs(text)).findings == ()


def test_websocket_in_another_document_and_the_file_provider() -> None:
    text = (
        "http:\n  routers:\n    acme-ws:\n"
        "      rule: Host(`acme.example.com`) && PathPrefix(`/websocket`)\n"
        "      service: acme-gevent\n  services:\n    acme-gevent:\n      loadBalancer:\n"
        "        servers:\n          - url: http://10.0.1.12:8072\n"
    )
    routes = docs(ingressroute(odoo_route()))
    assert run("traefik.odoo-websocket", *routes, *docs(text, "ws.yaml")).findings == ()


def test_odoo_before_16_needs_no_websocket_router() -> None:
    documents = docs(ingressroute(odoo_route(), ns="odoo-mt-1"))
    assert run("traefik.odoo-websocket", *documents, catalog=make_catalog("15.0")).findings == ()
    assert (
        len(run("traefik.odoo-websocket", *documents, catalog=make_catalog("17.0")).findings) == 1
    )
    # Without a catalog, 16.0 or later is assumed.
    assert len(run("traefik.odoo-websocket", *documents).findings) == 1
    file_router_docs = file_router()
    old = make_catalog("14.0")
    assert (
        run("traefik.odoo-websocket", *file_router_docs, catalog=old, tenant="acme").findings == ()
    )
    assert len(run("traefik.odoo-websocket", *file_router_docs, catalog=old).findings) == 1


# --------------------------------------------------------------------------- dashboard


def test_dashboard_without_auth_and_tls() -> None:
    text = (
        "http:\n  routers:\n    dashboard:\n      rule: Host(`traefik.example.com`)\n"
        "      entryPoints: [web]\n      service: api@internal\n"
    )
    [finding] = run("traefik.dashboard", *docs(text)).findings
    assert finding.message == (
        "router dashboard@file exposes api@internal with no authentication middleware and no TLS"
    )
    # The redirect rule leaves it to this one.
    assert run("traefik.https-redirect", *docs(text)).findings == ()


def test_dashboard_ingressroute_with_auth_in_a_chain() -> None:
    text = (
        "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata:\n  name: admin\n"
        "  namespace: traefik\nspec:\n  chain:\n    middlewares:\n      - name: basic\n"
        "---\napiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata:\n  name: basic\n"
        "  namespace: traefik\nspec:\n  basicAuth:\n    secret: dashboard-users\n---\n"
        + ingressroute(
            "{match: Host(`traefik.example.com`), kind: Rule, services: "
            "[{name: dashboard@internal, kind: TraefikService}], middlewares: [{name: admin}]}",
            ns="traefik",
            name="dashboard",
            tls="",
        )
    )
    assert messages(run("traefik.dashboard", *docs(text))) == [
        "IngressRoute traefik/dashboard routes[0] exposes dashboard@internal with no TLS"
    ]


# --------------------------------------------------------------------------- targets


def test_route_target_port_must_exist() -> None:
    text = SERVICE.format(ns="tenant-acme") + "---\n" + ingressroute(odoo_route(port=8080))
    [finding] = run("traefik.route-targets-service", *docs(text)).findings
    assert finding.message == (
        "IngressRoute tenant-acme/odoo routes[0] targets port 8080 of Service tenant-acme/odoo, "
        "which exposes 8069 (http), 8072 (longpolling)"
    )


def test_route_targets_only_judged_where_the_change_set_has_services() -> None:
    routes = docs(ingressroute(odoo_route(service="missing")))
    assert run("traefik.route-targets-service", *routes).findings == ()
    other = docs(SERVICE.format(ns="tenant-globex"), "globex.yaml")
    assert run("traefik.route-targets-service", *routes, *other).findings == ()
    here = docs(SERVICE.format(ns="tenant-acme"), "acme.yaml")
    [message] = messages(run("traefik.route-targets-service", *routes, *here))
    assert "targets Service tenant-acme/missing, which the change set does not have" in message


def test_route_targets_traefik_services_and_old_api_group() -> None:
    weighted = (
        "apiVersion: traefik.containo.us/v1alpha1\nkind: TraefikService\nmetadata:\n"
        "  name: canary\n  namespace: tenant-acme\nspec:\n  weighted:\n    services: []\n"
    )
    text = ingressroute(
        "{match: Host(`a.example.com`), kind: Rule, services: "
        "[{name: canaries, kind: TraefikService}]}",
        api="traefik.containo.us/v1alpha1",
    )
    [message] = messages(run("traefik.route-targets-service", *docs(weighted + "---\n" + text)))
    assert "targets TraefikService tenant-acme/canaries" in message


def test_model_reads_both_api_groups_and_ignores_other_kinds() -> None:
    text = (
        ingressroute(odoo_route(), api="traefik.containo.us/v1alpha1")
        + "---\n"
        + ingressroute(odoo_route(), api="example.com/v1", name="other")
        + "---\n"
        + ingressroute(
            "{match: HostSNI(`*`), services: [{name: pg, port: 5432}]}",
            kind="IngressRouteTCP",
            name="pg",
            tls="{passthrough: true}",
        )
    )
    model = traefik.build(ChangeSet(docs(text)))
    assert [r.label for r in model.routers] == [
        "IngressRoute tenant-acme/odoo routes[0]",
        "IngressRouteTCP tenant-acme/pg routes[0]",
    ]
    assert model.routers[1].protocol == "tcp"


# --------------------------------------------------------------------------- odd input

_ODD: list[Any] = [None, True, 0, 8069, "x", "", [], {}, [None], [1, "a"], {"a": None}]


def _odd_documents() -> list[Document]:
    file_data: dict[str, Any] = {
        "http": {
            "routers": {
                "r": {
                    "rule": "Host(`a.com`) && PathPrefix(`/websocket`)",
                    "entryPoints": ["websecure"],
                    "service": "s",
                    "middlewares": ["m", "c"],
                    "tls": {"certResolver": "le"},
                    "priority": 5,
                }
            },
            "services": {
                "s": {"loadBalancer": {"servers": [{"url": "http://[::1:8069"}]}},
                "w": {"weighted": {"services": [{"name": "w"}, {"name": "s"}]}},
            },
            "middlewares": {
                "m": {"headers": {"frameDeny": True}},
                "c": {"chain": {"middlewares": ["m", "c"]}},
            },
        },
        "tcp": {"routers": {"t": {"rule": "HostSNI(`*`)", "tls": {"passthrough": True}}}},
        "tls": {"stores": {"default": {"defaultCertificate": {}}}},
    }
    crd_data: dict[str, Any] = {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": "odoo", "namespace": "tenant-acme"},
        "spec": {
            "entryPoints": ["web"],
            "routes": [
                {
                    "match": "Host(`a.com`)",
                    "priority": "7",
                    "services": [{"name": "odoo", "port": 8069, "kind": "Service"}],
                    "middlewares": [{"name": "m"}, {"name": "x@file"}],
                }
            ],
            "tls": {"secretName": "x"},
        },
    }
    paths: list[tuple[str, tuple[Any, ...]]] = [
        ("file", ("http",)),
        ("file", ("http", "routers")),
        ("file", ("http", "routers", "r")),
        ("file", ("http", "routers", "r", "rule")),
        ("file", ("http", "routers", "r", "entryPoints")),
        ("file", ("http", "routers", "r", "service")),
        ("file", ("http", "routers", "r", "middlewares")),
        ("file", ("http", "routers", "r", "tls")),
        ("file", ("http", "routers", "r", "priority")),
        ("file", ("http", "services", "s", "loadBalancer", "servers")),
        ("file", ("http", "services", "w", "weighted")),
        ("file", ("http", "middlewares", "m", "headers")),
        ("file", ("http", "middlewares", "c", "chain", "middlewares")),
        ("file", ("tcp", "routers", "t")),
        ("file", ("tls", "stores")),
        ("file", ("tls",)),
        ("crd", ("spec",)),
        ("crd", ("spec", "routes")),
        ("crd", ("spec", "routes", 0)),
        ("crd", ("spec", "routes", 0, "match")),
        ("crd", ("spec", "routes", 0, "services")),
        ("crd", ("spec", "routes", 0, "services", 0)),
        ("crd", ("spec", "routes", 0, "services", 0, "port")),
        ("crd", ("spec", "routes", 0, "services", 0, "name")),
        ("crd", ("spec", "routes", 0, "middlewares")),
        ("crd", ("spec", "routes", 0, "middlewares", 0)),
        ("crd", ("spec", "entryPoints")),
        ("crd", ("spec", "tls")),
    ]
    documents: list[Document] = []
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "odoo", "namespace": "tenant-acme"},
        "spec": {"ports": [{"port": 8069}, "x", {"port": "http", "targetPort": None}]},
    }
    for number, (which, path) in enumerate(paths):
        for value in _ODD:
            data = copy.deepcopy(file_data if which == "file" else crd_data)
            target: Any = data
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
            fmt = Format.TRAEFIK if which == "file" else Format.KUBERNETES
            documents.append(Document(f"odd-{number}.yaml", len(documents), 1, fmt, data))
    documents.append(Document("svc.yaml", 0, 1, Format.KUBERNETES, service))
    documents.append(Document("list.yaml", 0, 1, Format.TRAEFIK, ["http"]))
    documents.append(Document("text.toml", 0, 1, Format.TRAEFIK, "http"))
    middleware = {"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware", "spec": "x"}
    documents.append(Document("mw.yaml", 0, 1, Format.KUBERNETES, middleware))
    return documents


def test_odd_types_never_raise() -> None:
    report = check(RULES, _odd_documents())
    assert report.summary.rules_run == len(RULES)


def test_odd_catalog_free_context_and_empty_change_set() -> None:
    assert rule_ids(check(RULES, [])) == []
