"""`make demo`: the whole delivery chain on local defaults, then cleaned up.

1. starts two local registries (the image's registry and a mirror) and a webhook
   receiver, all on free loopback ports;
2. makes a two-platform base image from Debian's busybox-static (amd64 + arm64) and
   pushes it with `acr-ci push`;
3. writes `.demo/.acr-ci.yml`: `examples/.acr-ci.yml` with the hosts and ports of what
   it started (comments kept), and the base image as a build arg;
4. runs `acr-ci plan`, then `acr-ci run` for a push to `release-v1`: build for
   linux/amd64 + linux/arm64 with buildah, push, scan gate on the bundled report,
   sync to the mirror, signed trigger; shows the record summary;
5. checks from the outside what a user would: the mirror serves the same digest,
   the receiver got one signed POST per `v…` tag; stops everything it started.

It needs root (buildah, binfmt_misc for qemu) on a Debian machine; `make demo` installs
the rest. Exit code: acr-ci's, or 1 if an outside check fails.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ruamel.yaml import YAML

from acr_ci.devkit import DevkitError
from acr_ci.devkit.baseimage import busybox_binaries, ensure_qemu_aarch64, write_busybox_layout
from acr_ci.devkit.receiver import WebhookReceiver
from acr_ci.devkit.registry import RegistryServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
WORK = ROOT / ".demo"
PUSH_TIME = "2020-10-15T16:13:00+08:00"
FALLBACK_SHA = "4a8b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b"
HOOK_SECRET = "demo-secret-not-for-production"  # noqa: S105 - a demo value, local only


def acr_ci(*args: str, env: dict[str, str] | None = None, check: bool = True) -> int:
    print(f"\n$ acr-ci {' '.join(args)}", flush=True)
    exe = shutil.which("acr-ci", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "acr_ci"]
    code = subprocess.run([*cmd, *args], env={**os.environ, **(env or {})}, check=False).returncode
    if check and code != 0:
        raise SystemExit(code)
    return code


def head_sha() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() if out.returncode == 0 else FALLBACK_SHA


def demo_config(source: RegistryServer, mirror: RegistryServer, receiver: WebhookReceiver,
                base: str) -> Path:
    """The example config, pointed at what the demo started."""
    yaml = YAML()
    doc = yaml.load(EXAMPLES / ".acr-ci.yml")
    doc["image"] = source.ref("demo/hello")
    for rule in doc["build"]["rules"]:
        rule.setdefault("args", {})["BASE"] = base
    doc["scan"]["on_block"]["backup"] = source.ref("quarantine/hello")
    doc["sync"][0]["to"] = mirror.ref("mirror")
    doc["triggers"][0]["url"] = receiver.url("/hooks/deploy") + "?token=demo-token"
    shutil.copytree(EXAMPLES / "hello", WORK / "hello")
    shutil.copytree(EXAMPLES / "reports", WORK / "reports")
    path = WORK / ".acr-ci.yml"
    with path.open("w") as f:
        yaml.dump(doc, f)
    return path


def served_digest(ref: str) -> str | None:
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True, check=False,
    )
    return "sha256:" + hashlib.sha256(out.stdout).hexdigest() if out.returncode == 0 else None


def check(what: str, ok: bool) -> bool:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    return ok


def main() -> int:
    try:
        return demo()
    except DevkitError as e:  # this machine lacks something the demo needs: say what
        print(f"demo: {e.diagnostics()}", file=sys.stderr)
        return 1


def demo() -> int:
    started = time.monotonic()
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir()
    ensure_qemu_aarch64()
    source = RegistryServer(WORK / "registry")
    mirror = RegistryServer(WORK / "mirror")
    receiver = WebhookReceiver()
    try:
        source.start()
        mirror.start()
        receiver.start()
        print(f"registry {source.host}, mirror {mirror.host}, webhook receiver {receiver.origin}")

        base_layout = write_busybox_layout(WORK / "base", busybox_binaries(WORK))
        base = source.ref("base/busybox:1")
        acr_ci("push", "--quiet", f"oci-layout:{base_layout.path}", base)

        config = demo_config(source, mirror, receiver, base)
        sha = head_sha()
        ref = ["--ref", "refs/heads/release-v1", "--sha", sha, "--time", PUSH_TIME]
        acr_ci("plan", "--config", str(config), *ref)
        record_path = WORK / "record.json"
        code = acr_ci(
            "run", "--config", str(config), *ref, "--record", str(record_path),
            "--layout-dir", str(WORK / "layouts"),
            env={"DEMO_HOOK_SECRET": HOOK_SECRET}, check=False,
        )

        print("\nChecked from the outside:")
        record = json.loads(record_path.read_text())
        [image] = record["images"]
        digest = image["digest"]
        ok = check(f"acr-ci run exited {code}", code == 0)
        for tag in image["tags"]:
            ok &= check(f"{source.ref('demo/hello')}:{tag} serves {digest[:19]}…",
                        served_digest(source.ref(f"demo/hello:{tag}")) == digest)
            ok &= check(f"{mirror.ref('mirror/hello')}:{tag} serves the same digest",
                        served_digest(mirror.ref(f"mirror/hello:{tag}")) == digest)
        posted = receiver.to("/hooks/deploy")
        ok &= check(f"{len(posted)} trigger POST(s), for tags "
                    f"{[r.json()['push_data']['tag'] for r in posted]}", len(posted) >= 1)
        for r in posted:
            want = "sha256=" + hmac.new(HOOK_SECRET.encode(), r.body, hashlib.sha256).hexdigest()
            ok &= check("signature verifies with the shared secret",
                        r.headers.get("x-acr-ci-signature") == want)
        ok &= check("no token in the record", "demo-token" not in record_path.read_text())
        print(f"\nrecord: {record_path}   demo wall time: {time.monotonic() - started:.1f}s")
        return code if code else (0 if ok else 1)
    finally:
        receiver.stop()
        mirror.stop()
        source.stop()


if __name__ == "__main__":
    sys.exit(main())
