"""Drift findings and signatures, pure: stable finding ids, the category they say, the
emergency change's title and text; gpg's status lines judged by fingerprint."""

from __future__ import annotations

from changegate.adapters import gitsign
from changegate.domain import drift as d
from changegate.domain.changes import Category

ALICE = "DDE365B1A9A0541E24A4CED1C6B2D7CDEF696E7D"
ALICE_SUB = "0123456789ABCDEF0123456789ABCDEF01234567"
OTHER = "AAAABBBBCCCCDDDDEEEEFFFF0000111122223333"
KNOWN = {ALICE: "keys/alice.asc", ALICE_SUB: "keys/alice.asc"}
KEY: d.Key = ("apps/v1", "Deployment", "odoo-mt-1", "odoo")


def status(*lines: str) -> str:
    return "\n".join(f"[GNUPG:] {line}" for line in lines) + "\n"


def good(signing: str, primary: str, *extra: str) -> str:
    return status(
        "NEWSIG",
        f"KEY_CONSIDERED {primary} 0",
        "SIG_ID uqVFjcyo1VuhL1ZlZ6h1pRaL3eg 2026-11-26 1795703880",
        f"GOODSIG {primary[-16:]} Alice Signer <alice@example.com>",
        f"VALIDSIG {signing} 2026-11-26 1795703880 0 4 0 22 8 00 {primary}",
        *extra,
    )


def test_a_valid_signature_by_an_imported_key_passes_by_its_fingerprint() -> None:
    verdict = gitsign.judge(good(ALICE, ALICE), KNOWN)
    assert verdict.ok and verdict.fingerprint == ALICE
    assert verdict.reason == f"signed by {ALICE} (keys/alice.asc)"
    # A signing subkey counts for its primary key.
    assert gitsign.judge(good(ALICE_SUB, ALICE), {ALICE_SUB: "keys/alice.asc"}).ok
    # Lower-case hex from gpg is the same fingerprint.
    assert gitsign.judge(good(ALICE.lower(), ALICE.lower()), KNOWN).ok


def test_unknown_bad_expired_and_revoked_signatures_fail_with_the_reason() -> None:
    unknown = gitsign.judge(good(OTHER, OTHER), KNOWN)
    assert not unknown.ok and unknown.reason == f"unknown key {OTHER}"
    missing = gitsign.judge(
        status("NEWSIG", f"ERRSIG {OTHER[-16:]} 22 8 00 1795703880 9 {OTHER}", "NO_PUBKEY x"),
        KNOWN,
    )
    assert missing.reason == f"unknown key {OTHER}"
    no_fpr = gitsign.judge(status("NEWSIG", f"ERRSIG {OTHER[-16:]} 22 8 00 1795703880 9 -"), KNOWN)
    assert no_fpr.reason == f"unknown key {OTHER[-16:]}"
    algo = gitsign.judge(status("NEWSIG", f"ERRSIG {OTHER[-16:]} 99 8 00 1 4 {OTHER}"), KNOWN)
    assert algo.reason.startswith("bad signature (not checkable: an unsupported algorithm")
    bad = gitsign.judge(status("NEWSIG", f"BADSIG {ALICE[-16:]} Alice"), KNOWN)
    assert not bad.ok and bad.reason == f"bad signature (key {ALICE[-16:]})"
    expired = gitsign.judge(
        good(ALICE, ALICE).replace("GOODSIG", "EXPKEYSIG"), KNOWN
    )  # gpg says EXPKEYSIG instead of GOODSIG, and still VALIDSIG
    assert not expired.ok and expired.reason == f"signed by expired key {ALICE}"
    revoked = gitsign.judge(good(ALICE, ALICE).replace("GOODSIG", "REVKEYSIG"), KNOWN)
    assert revoked.reason == f"signed by revoked key {ALICE}"
    assert not gitsign.judge(status("NEWSIG"), KNOWN).ok
    assert not gitsign.judge("", KNOWN).ok
    twice = good(ALICE, ALICE) + good(ALICE, ALICE)
    assert gitsign.judge(twice, KNOWN).reason == "bad signature (more than one signature)"


def test_the_signature_header_is_read_from_the_commit_object() -> None:
    signed = (
        b"tree 3be22be77da4887e869c981806d8452f034dd014\n"
        b"author a <a@x> 1795703880 +0000\n"
        b"committer a <a@x> 1795703880 +0000\n"
        b"gpgsig -----BEGIN PGP SIGNATURE-----\n"
        b" \n"
        b" iHUEABYIAB0WIQTd42Wx\n"
        b" -----END PGP SIGNATURE-----\n"
        b"\n"
        b"signed\n\ngpgsig in the message is not a header\n"
    )
    found = gitsign.signature_of(signed)
    assert found is not None
    assert found.splitlines() == [
        "-----BEGIN PGP SIGNATURE-----",
        "",
        "iHUEABYIAB0WIQTd42Wx",
        "-----END PGP SIGNATURE-----",
    ]
    unsigned = b"tree 3be2\nauthor a <a@x> 1 +0000\n\ngpgsig -----BEGIN PGP SIGNATURE-----\n"
    assert gitsign.signature_of(unsigned) is None


def drifted(*paths: str, live: object = "odoo:hotfix", kind: str = "Deployment") -> d.DriftedObject:
    key: d.Key = (KEY[0], kind, KEY[2], KEY[3])
    return d.DriftedObject(
        key, "clusters/shared-1/tenants/acme/app.yaml", [d.Difference(p, "x", live) for p in paths]
    )


IMAGE = "spec.template.spec.containers[odoo].image"


def test_finding_ids_are_stable_and_change_with_what_was_found() -> None:
    one = d.drifted_finding(drifted(IMAGE), None)
    assert one.id == d.drifted_finding(drifted(IMAGE), None).id
    assert one.id.startswith("drifted:")
    assert one.id != d.drifted_finding(drifted(IMAGE, live="odoo:other"), None).id
    assert one.id != d.drifted_finding(drifted(IMAGE, "spec.replicas"), None).id
    # A Secret's values never enter its id (nor its text): only the paths do.
    secret = d.drifted_finding(drifted("data.password", kind="Secret", live="s3cret"), None)
    same = d.drifted_finding(drifted("data.password", kind="Secret", live="other"), None)
    assert secret.id == same.id and "s3cret" not in secret.text
    commit = d.UnauthorizedCommit("a" * 40, "hand edit", ["x.yaml"], "unsigned")
    assert d.commit_finding(commit, None, "").id == "commit:" + "a" * 40
    assert d.unmanaged_finding(KEY).id != d.missing_finding(KEY, "x.yaml", None).id


def test_the_category_is_what_the_content_says_else_the_rule_else_kubernetes() -> None:
    images = d.drifted_finding(drifted(IMAGE), Category.TENANT_CONFIG, "paths[1] says so")
    assert images.category is Category.APPLICATION_RELEASE
    replicas = d.drifted_finding(drifted("spec.replicas"), Category.TENANT_CONFIG, "paths[1]")
    assert replicas.category is Category.TENANT_CONFIG
    pg_key: d.Key = ("postgresql.cnpg.io/v1", "Cluster", "db", "pg-1")
    pg = d.drifted_finding(d.DriftedObject(pg_key, "p.yaml", [d.Difference("spec.x", 1, 2)]), None)
    assert pg.category is Category.DATABASE_CONFIG
    assert d.choose_category([images])[0] is Category.APPLICATION_RELEASE
    mixed, why = d.choose_category([images, replicas])
    assert mixed is Category.KUBERNETES and "application-release, tenant-config" in why
    unclear, why = d.choose_category([images, d.unmanaged_finding(KEY)])
    assert unclear is Category.KUBERNETES and "declared nowhere" in why


def test_the_title_and_justification_name_what_was_found() -> None:
    commit = d.UnauthorizedCommit("b" * 40, "hot fix", ["clusters/a.yaml"], "no Change-Id trailer")
    findings = [
        d.commit_finding(commit, None, ""),
        d.drifted_finding(drifted(IMAGE), None),
        d.unmanaged_finding(KEY),
        d.unmanaged_finding((KEY[0], KEY[1], KEY[2], "other")),
    ]
    title = d.emergency_title(findings, ["acme"])
    assert title == (
        "Unauthorized change detected: 1 unauthorized commit, 1 drifted object, "
        "2 unmanaged objects on acme"
    )
    assert len(d.emergency_title(findings, [f"tenant-{i:03}" * 9 for i in range(9)])) == 200
    text = d.emergency_justification(findings, ["head"], ["foot"])
    assert text.startswith("head\n\nUnauthorized commits:\n- bbbbbbbbbbbb 'hot fix': no Change-Id")
    assert IMAGE in text and text.endswith("\nfoot")
    many = [d.unmanaged_finding((KEY[0], KEY[1], KEY[2], f"o-{i}" * 40)) for i in range(2000)]
    long = d.emergency_justification(many, ["head"], ["foot"])
    assert len(long) <= d.JUSTIFICATION_LIMIT and "more findings" in long
    assert long.endswith("\nfoot")
