"""Ed25519 private keys kept as PEM files: made once, atomically, then read by everyone."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def load_or_create_ed25519_key(path: Path) -> Ed25519PrivateKey:
    """The key in ``path`` (PEM, PKCS#8), created there first when missing."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(pem)
    tmp.chmod(0o600)
    try:
        # Atomic and first-wins, so processes starting together agree on one key.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return load_or_create_ed25519_key(path)
