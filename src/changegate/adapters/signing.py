"""Ed25519 keys for audit checkpoints, kept in PEM files (the `cryptography` library)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from changegate.errors import InvalidInput, Problem


def generate(private_path: Path, public_path: Path) -> str:
    """Write a new key pair (private key readable by the owner only); returns the public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if private_path.exists():
        raise InvalidInput(
            [Problem("refusing to overwrite an existing key", file=str(private_path))]
        )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public_text(key.public_key())


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        # The message never includes key material.
        raise InvalidInput(
            [Problem(f"cannot read an Ed25519 private key: {type(exc).__name__}", file=str(path))]
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput([Problem("the key is not an Ed25519 key", file=str(path))])
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            [Problem(f"cannot read an Ed25519 public key: {type(exc).__name__}", file=str(path))]
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput([Problem("the key is not an Ed25519 key", file=str(path))])
    return key


def public_text(key: Ed25519PublicKey) -> str:
    """The raw public key, base64: short enough to print and compare."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def sign(key: Ed25519PrivateKey, payload: bytes) -> str:
    return base64.b64encode(key.sign(payload)).decode("ascii")


def verify(key: Ed25519PublicKey, payload: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), payload)
    except (InvalidSignature, ValueError):
        return False
    return True
