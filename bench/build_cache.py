"""Registry build cache benchmark: a fresh runner with and without the cache, on loopback.

Run on demand (not in CI), from the repository root:

    python bench/build_cache.py                       # one round, linux/amd64
    python bench/build_cache.py --repeat 3 --loops 3000000 --json out.json

A Dockerfile whose ``RUN`` step is slow and deterministic (a shell loop of ``--loops``
iterations computing a checksum into a file), then a ``COPY``, built with buildah by
``acr-ci build`` (each build its own process, its own fresh build storage through
``CONTAINERS_STORAGE_CONF``, as a fresh CI runner would be), in each round:

  fill      storage A, with the registry cache: runs every step, writes the cache
  uncached  storage B, a rule without a cache: runs every step
  cached    storage C, with the registry cache filled by ``fill``: takes every step
            from it

(``uncached`` and ``cached`` alternate which goes first between rounds.) It prints the wall
times (median over rounds), the cached/uncached ratio and PASS/MISS against the target
(≤ 0.40), and checks that ``cached`` took every step from the cache (buildah's
``Cache pulled from remote`` lines) and has the layers of ``fill``. Exit status: 1 if a
build failed or a check failed, 0 otherwise (``--strict``: also 1 on a MISS).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.buildenv import push_layout_with_skopeo  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

from acr_ci.devkit.baseimage import (  # noqa: E402
    busybox_binaries,
    ensure_qemu_aarch64,
    write_busybox_layout,
)

TARGET_RATIO = 0.40
PULLED = "Cache pulled from remote "
SHA = "0123456789abcdef0123456789abcdef01234567"
DOCKERFILE = """\
ARG BASE
FROM ${{BASE}}
RUN i=0; s=7; while [ $i -lt {loops} ]; do i=$((i+1)); s=$(((s*31+i)%1000003)); done; echo $s > /checksum
COPY app.txt /app.txt
"""


@dataclass
class Run:
    kind: str
    """``fill``, ``uncached`` or ``cached``."""
    round: int
    seconds: float
    code: int
    pulled: int
    """Steps buildah took from the registry cache."""
    cache: dict[str, Any] | None
    """The build's ``cache`` outcome (``--output-json``)."""
    layers: dict[str, list[str]] = field(default_factory=dict)
    """Platform → layer digests."""


def storage_conf(root: Path) -> Path:
    root.mkdir(parents=True)
    conf = root / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root / "graph"}"\nrunroot = "{root / "run"}"\n'
    )
    return conf


def layers_of(build: dict[str, Any]) -> dict[str, list[str]]:
    layout = Path(build["layout"])
    out: dict[str, list[str]] = {}
    for platform, digest in build["platforms"].items():
        doc = json.loads((layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_text())
        out[platform] = [layer["digest"] for layer in doc["layers"]]
    return out


def build(kind: str, n: int, config: Path, rule: str, work: Path) -> Run:
    """``acr-ci build --rule RULE`` in its own process on a fresh storage under ``work``."""
    here = work / f"{n}-{kind}"
    conf = storage_conf(here / "storage")
    env = {
        **os.environ,
        "CONTAINERS_STORAGE_CONF": str(conf),
        "STORAGE_DRIVER": "vfs",
        "BUILDAH_ISOLATION": "chroot",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    argv = [
        sys.executable, "-m", "acr_ci", "build", "--config", str(config), "--ref", "main",
        "--sha", SHA, "--time", "2026-01-01T00:00:00Z", "--rule", rule,
        "--output-json", str(here / "build.json"), "--layout-dir", str(here / "work"),
    ]  # fmt: skip
    started = time.monotonic()
    with open(here / "log.txt", "w") as log:
        code = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - started
    text = (here / "log.txt").read_text(errors="replace")
    run = Run(kind, n, seconds, code, text.count(PULLED), None)
    if code == 0:
        [doc] = json.loads((here / "build.json").read_text())["builds"]
        run.cache, run.layers = doc["cache"], layers_of(doc)
    subprocess.run(["buildah", "rm", "--all"], env=env, capture_output=True, check=False)
    shutil.rmtree(here / "storage", ignore_errors=True)
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--loops", type=int, default=1_500_000, help="iterations of the slow RUN step")
    ap.add_argument("--repeat", type=int, default=1, help="rounds (wall time = median)")
    ap.add_argument(
        "--platform", action="append", choices=["linux/amd64", "linux/arm64"],
        help="platforms to build (repeatable; default linux/amd64; arm64 runs through qemu)",
    )  # fmt: skip
    ap.add_argument(
        "--workdir", type=Path, help="keep storages' logs, layouts and the registry here"
    )
    ap.add_argument("--json", type=Path, help="write every run's figures here")
    ap.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = ap.parse_args(argv)
    platforms = args.platform or ["linux/amd64"]
    if "linux/arm64" in platforms:
        ensure_qemu_aarch64()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="acr-ci-bench-cache-"))
    work.mkdir(parents=True, exist_ok=True)
    registry = RegistryServer(work / "registry")
    registry.start()
    runs: list[Run] = []
    try:
        base = write_busybox_layout(work / "base", busybox_binaries(work))
        push_layout_with_skopeo(base.path, registry.ref("base/busybox:1"))
        repo = work / "repo"
        (repo / "app").mkdir(parents=True, exist_ok=True)
        (repo / "app" / "Dockerfile").write_text(DOCKERFILE.format(loops=args.loops))
        (repo / "app" / "app.txt").write_text("the application\n")
        for n in range(1, args.repeat + 1):
            # a new cache repository per round: each fill starts from an empty cache
            config = repo / f"acr-ci-{n}.yml"
            rule = f"""\
    - name: {{name}}
      type: branch
      match: main
      context: app
      tags: [latest]
      platforms: {json.dumps(platforms)}
      args: {{{{BASE: "{registry.ref("base/busybox:1")}"}}}}
"""
            config.write_text(
                f"version: 1\nimage: {registry.ref('bench/app')}\nbuild:\n  builder: buildah\n"
                "  rules:\n"
                + rule.format(name="with-cache")
                + f'      cache: {{ref: "{registry.ref(f"cache/round{n}")}"}}\n'
                + rule.format(name="without-cache")
            )
            runs.append(build("fill", n, config, "with-cache", work))
            pair = [("uncached", "without-cache"), ("cached", "with-cache")]
            for kind, name in pair if n % 2 else pair[::-1]:
                runs.append(build(kind, n, config, name, work))
    finally:
        registry.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return report(runs, platforms, args)


def report(runs: list[Run], platforms: list[str], args: argparse.Namespace) -> int:
    failed = [r for r in runs if r.code != 0]
    problems = [f"{r.kind} build of round {r.round} failed (exit {r.code})" for r in failed]
    steps = 2 * len(platforms)  # RUN and COPY per platform
    fills = {r.round: r for r in runs if r.kind == "fill"}
    for r in runs:
        if r.code != 0:
            continue
        if r.kind == "cached":
            if r.pulled != steps:
                problems.append(
                    f"cached round {r.round}: {r.pulled} of {steps} steps from the cache"
                )
            if r.layers != fills[r.round].layers:
                problems.append(f"cached round {r.round}: its layers differ from fill's")
        elif r.pulled:
            problems.append(f"{r.kind} round {r.round}: took {r.pulled} steps from a cache")

    def median(kind: str) -> float:
        values = [r.seconds for r in runs if r.kind == kind and r.code == 0]
        return statistics.median(values) if values else float("nan")

    fill, uncached, cached = median("fill"), median("uncached"), median("cached")
    ratio = cached / uncached if uncached else float("nan")
    verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
    print(f"registry build cache, buildah, {', '.join(platforms)}, RUN loop of {args.loops:,}")
    print(f"  rounds: {args.repeat} (wall time: median; each build a fresh storage)")
    print(f"  fill      {fill:7.2f} s   (every step run, cache written)")
    print(f"  uncached  {uncached:7.2f} s   (every step run, no cache)")
    print(f"  cached    {cached:7.2f} s   (every step from the cache)")
    print(f"  cached / uncached = {ratio:.2f}   target <= {TARGET_RATIO:.2f}: {verdict}")
    for p in problems:
        print(f"  FAILED CHECK: {p}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"runs": [asdict(r) for r in runs], "ratio": ratio, "target": TARGET_RATIO},
                indent=2,
            )
        )
    if problems:
        return 1
    return 1 if args.strict and verdict == "MISS" else 0


if __name__ == "__main__":
    sys.exit(main())
