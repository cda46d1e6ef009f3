"""Docker ``config.json`` files for tests: point ``DOCKER_CONFIG`` at the directory."""

from __future__ import annotations

import base64
import json
from pathlib import Path


def write_docker_config(
    directory: Path,
    creds: dict[str, tuple[str, str]],
    *,
    extra: dict[str, object] | None = None,
) -> Path:
    """Write ``directory/config.json`` with ``auths`` for each ``host -> (user, password)``.

    Each entry is ``{"auth": base64("user:password")}``, the form ``docker login`` writes.
    ``extra`` is merged into the top level (e.g. ``{"credsStore": "x"}``). Merges into an
    existing file's ``auths``. Returns the directory (the value for ``DOCKER_CONFIG``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    data: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
    auths = data.setdefault("auths", {})
    assert isinstance(auths, dict)
    for host, (user, password) in creds.items():
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        auths[host] = {"auth": token}
    data.update(extra or {})
    path.write_text(json.dumps(data, indent=2) + "\n")
    path.chmod(0o600)
    return directory
