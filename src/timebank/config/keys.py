"""Local keys for the embedded mode: generated once, kept under var/ with owner-only permissions."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path


def local_secret(var_dir: Path, name: str, *, kind: str = "token") -> str:
    keys_dir = var_dir / "keys"
    path = keys_dir / name
    if path.exists():
        return path.read_text().strip()
    keys_dir.mkdir(parents=True, exist_ok=True)
    if kind == "fernet":
        value = base64.urlsafe_b64encode(os.urandom(32)).decode()
    elif kind == "hex32":
        value = os.urandom(32).hex()
    else:
        value = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
