"""Backfill benchmark: ``acr-ci sync --backfill`` side by side with ``skopeo sync``, on loopback.

Run on demand (not in CI), from the repository root:

    python bench/backfill.py                  # 200 tags, one run each
    python bench/backfill.py --tags 50 --repeat 3 --json out.json

It writes one OCI layout holding TAGS small single-platform images that share one 5 MiB
base layer (each adds a 1 KiB layer and its own config), pushes every image to a source
registry S with acr-ci's client (tag ``t000``…), then for every repeat starts two fresh
registries and mirrors the whole repository, each command in its own process:

  acr-ci   acr-ci sync --backfill --quiet --config CFG S/bench/app  (sync: to M1/mirror)
  skopeo   skopeo sync --all --preserve-digests --src docker --dest docker
           --src-tls-verify=false --dest-tls-verify=false S/bench/app M2/mirror

(the tool that goes first alternates between repeats). Every tag at both mirrors is
checked to serve the source's digest. Then ``acr-ci sync --backfill`` runs again into M1
through byte-counting proxies in front of S and M1: what it sends (request lines,
headers, bodies, to both) must stay under 1 MiB. It prints the median wall times, the
acr-ci/skopeo ratio and PASS/MISS against the targets. Exit status: 1 if a command
failed or a digest is wrong, 0 otherwise (``--strict``: also 1 on any MISS).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import shutil
import statistics
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.registry import Run, acr_ci_command, measure  # noqa: E402
from tests.support._proc import REGISTRY_BINARY  # noqa: E402
from tests.support.faultproxy import FaultProxy  # noqa: E402
from tests.support.layout import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, MiB  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

TARGET_RATIO = 0.5
TARGET_RERUN_BYTES = MiB
BASE_BYTES = 5 * MiB
TOP_BYTES = 1024
REPO = "bench/app"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass
class Results:
    tags: int
    repeat: int
    runs: list[Run] = field(default_factory=list)
    rerun_sent: list[int] = field(default_factory=list)
    rerun_requests: list[int] = field(default_factory=list)
    digest_errors: list[str] = field(default_factory=list)

    def of(self, step: str, tool: str) -> list[Run]:
        return [r for r in self.runs if r.step == step and r.tool == tool]


# -- the images ------------------------------------------------------------------------


def _tar_of(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _put(blobs: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobs / digest[7:]).write_bytes(data)
    return digest


def write_layout(directory: Path, count: int, seed: int) -> dict[str, str]:
    """An OCI layout of ``count`` images over one shared 5 MiB base layer; ``tag → digest``."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    base = _tar_of("base/data.bin", rng.randbytes(BASE_BYTES))
    base_digest = _put(blobs, base)
    base_diff = base_digest  # uncompressed: the diff id is the digest
    entries, tags = [], {}
    for i in range(count):
        tag = f"t{i:03d}"
        top = _tar_of(f"app/{tag}.bin", rng.randbytes(TOP_BYTES))
        top_digest = _put(blobs, top)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": "2024-01-01T00:00:00Z",
                "config": {"Labels": {"bench.tag": tag}},
                "rootfs": {"type": "layers", "diff_ids": [base_diff, top_digest]},
            }
        ).encode()
        config_digest = _put(blobs, config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
                "layers": [
                    {"mediaType": OCI_LAYER, "digest": base_digest, "size": len(base)},
                    {"mediaType": OCI_LAYER, "digest": top_digest, "size": len(top)},
                ],
            }
        ).encode()
        digest = _put(blobs, manifest)
        tags[tag] = digest
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        )
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}\n')
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    (directory / "index.json").write_text(json.dumps(index))
    return tags


def push_all(layout: Path, registry: RegistryServer, tags: dict[str, str]) -> None:
    """Push every image of the layout to ``registry``/bench/app with acr-ci's client."""
    from acr_ci.registry import Client, Reference
    from acr_ci.registry.reference import LayoutReference

    dst = Reference.parse(f"{registry.host}/{REPO}")
    with Client() as client:
        client.push_layout(LayoutReference(str(layout), "t000"), dst, ["t000"])  # the base once

        def one(tag: str) -> None:
            result = client.push_layout(LayoutReference(str(layout), tag), dst, [tag])
            assert result.digest == tags[tag], (tag, result.digest)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, tags))


# -- checks ----------------------------------------------------------------------------


def check_mirror(server: RegistryServer, repo: str, tags: dict[str, str], what: str) -> list[str]:
    """Every tag of ``tags`` at ``server``/``repo`` serves its source digest; problems."""
    from tests.e2e.sync_support import digest_at

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = dict(zip(tags, pool.map(lambda t: digest_at(server, repo, t), tags), strict=True))
    wrong = [
        f"{what}: {repo}:{t} serves {got[t]}, expected {d}" for t, d in tags.items() if got[t] != d
    ]
    return wrong[:5] + ([f"{what}: … and {len(wrong) - 5} more"] if len(wrong) > 5 else [])


def write_config(path: Path, source: str, mirror: str) -> Path:
    path.write_text(
        f"version: 1\nimage: {source}/{REPO}\nsync:\n"
        f"  - name: mirror\n    to: {mirror}/mirror\n    level: namespace\n"
    )
    return path


def one_round(
    src: RegistryServer, tags: dict[str, str], work: Path, res: Results, order: int
) -> None:
    acr = acr_ci_command()
    skopeo = shutil.which("skopeo") or "skopeo"
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (
        RegistryServer(work / f"m1-{order}") as m1,
        RegistryServer(work / f"m2-{order}") as m2,
    ):
        cfg = write_config(work / f"acr-ci-{order}.yml", src.host, m1.host)
        commands = {
            "acr-ci": [
                *acr, "sync", "--backfill", "--quiet", "--config", str(cfg), f"{src.host}/{REPO}"
            ],
            "skopeo": [
                skopeo, "sync", "--all", "--preserve-digests", "--src", "docker", "--dest",
                "docker", "--src-tls-verify=false", "--dest-tls-verify=false",
                f"{src.host}/{REPO}", f"{m2.host}/mirror",
            ],
        }  # fmt: skip
        tools = ["acr-ci", "skopeo"] if order % 2 == 0 else ["skopeo", "acr-ci"]
        for tool in tools:
            run = measure("backfill", tool, commands[tool], logs)
            res.runs.append(run)
            server = m1 if tool == "acr-ci" else m2
            if run.returncode == 0:
                res.digest_errors += check_mirror(server, "mirror/app", tags, f"{tool} {order}")

        with FaultProxy(src.host) as sp, FaultProxy(m1.host) as mp:
            cfg2 = write_config(work / f"acr-ci-rerun-{order}.yml", sp.host, mp.host)
            rerun = [
                *acr,
                "sync",
                "--backfill",
                "--quiet",
                "--config",
                str(cfg2),
                f"{sp.host}/{REPO}",
            ]
            run = measure("rerun", "acr-ci", rerun, logs)
            res.runs.append(run)
            if run.returncode == 0:
                res.rerun_sent.append(sp.bytes_up + mp.bytes_up)
                res.rerun_requests.append(sp.requests + mp.requests)
    shutil.rmtree(m1.storage, ignore_errors=True)
    shutil.rmtree(m2.storage, ignore_errors=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(res: Results) -> tuple[list[str], bool]:
    lines = [
        f"{res.tags} tags over one shared {BASE_BYTES // MiB} MiB base layer; repeats: {res.repeat}",
        f"{'step':<9} {'tool':<7} {'wall s (median)':>16} {'peak RSS MiB':>13}  runs",
    ]
    medians: dict[tuple[str, str], float] = {}
    all_met = True
    for step, tool in (("backfill", "acr-ci"), ("backfill", "skopeo"), ("rerun", "acr-ci")):
        runs = [r for r in res.of(step, tool) if r.returncode == 0]
        if not runs:
            lines.append(f"{step:<9} {tool:<7} {'FAILED':>16}")
            continue
        medians[step, tool] = statistics.median(r.seconds for r in runs)
        peak = max(r.max_rss_kib for r in runs) / 1024
        lines.append(
            f"{step:<9} {tool:<7} {medians[step, tool]:>16.2f} {peak:>13.1f}  "
            + " ".join(f"{r.seconds:.2f}" for r in runs)
        )
    lines.append("")
    a, s = medians.get(("backfill", "acr-ci")), medians.get(("backfill", "skopeo"))
    if a is None or s is None:
        lines.append("backfill ratio acr-ci/skopeo: n/a (a command failed)  MISS")
        all_met = False
    else:
        ok = a / s <= TARGET_RATIO
        all_met &= ok
        lines.append(
            f"backfill ratio acr-ci/skopeo: {a / s:.2f} (target <= {TARGET_RATIO})  {verdict(ok)}"
        )
    if res.rerun_sent:
        sent = max(res.rerun_sent)
        ok = sent < TARGET_RERUN_BYTES
        all_met &= ok
        lines.append(
            f"second backfill bytes sent: {sent} in {max(res.rerun_requests)} requests "
            f"(target < {TARGET_RERUN_BYTES})  {verdict(ok)}"
        )
    else:
        lines.append("second backfill bytes sent: n/a (it failed)  MISS")
        all_met = False
    ok = not res.digest_errors
    all_met &= ok
    lines.append(f"every tag digest-exact at both mirrors: {verdict(ok)}")
    for r in res.runs:
        if r.returncode != 0:
            lines.append(f"FAILED ({r.returncode}): {' '.join(r.argv)}\n{r.stderr_tail}")
    lines.extend(f"DIGEST MISMATCH: {e}" for e in res.digest_errors)
    return lines, all_met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tags", type=int, default=200, help="images (tags), default 200")
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="wall time = median")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep layout, registries and logs here")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write raw results")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if not 1 <= args.tags <= 1000 or not 1 <= args.repeat <= 20:
        parser.error("--tags must be 1..1000 and --repeat 1..20")
    for tool in (REGISTRY_BINARY, "skopeo"):
        if shutil.which(tool) is None:
            print(
                f"bench: {tool} not found (apt-get install docker-registry skopeo)", file=sys.stderr
            )
            return 2
    owned = args.workdir is None
    work = Path(tempfile.mkdtemp(prefix="acr-ci-backfill-")) if owned else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    res = Results(tags=args.tags, repeat=args.repeat)
    try:
        tags = write_layout(work / "layout", args.tags, args.seed)
        with RegistryServer(work / "source") as src:
            push_all(work / "layout", src, tags)
            res.digest_errors += check_mirror(src, REPO, tags, "source")
            for order in range(args.repeat):
                one_round(src, tags, work, res, order)
    finally:
        if owned:
            shutil.rmtree(work, ignore_errors=True)
    lines, all_met = report(res)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(asdict(res), indent=2) + "\n")
    failed = res.digest_errors or any(r.returncode != 0 for r in res.runs)
    return 1 if failed or (args.strict and not all_met) else 0


if __name__ == "__main__":
    sys.exit(main())
