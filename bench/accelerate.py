"""Accelerated-twin benchmark: ``acr-ci accelerate`` side by side with ``ctr-remote images
convert --estargz --oci`` (``--format zstd-chunked``: ``--zstdchunked``), on loopback.

Run on demand (not in CI), from the repository root:

    python bench/accelerate.py                    # about 320 MiB, one run each
    python bench/accelerate.py --size-mib 100 --json out.json
    python bench/accelerate.py --format zstd-chunked

It writes a two-platform image (two gzip layers per platform, many files: small text-like
files, mid-size half-random ones and a few large ones, so that both chunking and the
per-file cost show), pushes it to a fresh local registry with ``acr-ci push``, starts a
private containerd, then measures, each command in its own process:

  acr-ci     acr-ci accelerate REG/bench/app:v1          (registry → convert → registry)
  ctr-remote ctr-remote images pull --plain-http --all-platforms REG/bench/app:v1
             ctr-remote images convert --estargz --oci --all-platforms SRC DST
             ctr-remote images push --plain-http DST

(zstd:chunked: ``convert --zstdchunked --oci --platform P`` and a push per platform, the
times summed: ctr-remote 0.12's ``--zstdchunked --all-platforms`` fails on a layer
platforms share; this image shares none, so the work is the same.)

acr-ci's wall time is compared with ctr-remote's pull + convert + push (the same work: from
the registry back to it) and with its convert alone; acr-ci's peak RSS comes from GNU time.
Both twins are checked: every layer's TOC digest, read by ``ctr-remote images
get-toc-digest``, equals its descriptor's annotation (acr-ci's twin) and the file lists of
the two twins' TOCs agree.

Targets: acr-ci wall time <= 1.0 x ctr-remote's (pull + convert + push), peak RSS <= 128 MiB.
Exit status: 1 if a command failed or a check is wrong; ``--strict``: also on a MISS.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import json
import random
import sys
import tarfile
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.containerd import Containerd  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

MiB = 1024 * 1024
TARGET_RATIO = 1.0
TARGET_RSS_MIB = 128.0

_spec = importlib.util.spec_from_file_location("bench_registry", ROOT / "bench" / "registry.py")
assert _spec is not None and _spec.loader is not None
_bench_registry = importlib.util.module_from_spec(_spec)
sys.modules["bench_registry"] = _bench_registry
_spec.loader.exec_module(_bench_registry)
measure = _bench_registry.measure
Run = _bench_registry.Run

WORDS = (
    b"the quick brown fox jumps over the lazy dog lorem ipsum dolor sit amet "
    b"container image layer registry manifest digest config platform "
).split()

PLATFORMS = ("linux/amd64", "linux/arm64")
"""The bench image's platforms."""


def _payload(rng: random.Random, size: int) -> bytes:
    """Half text-like (compressible), half random: a layer compresses to about 55 %."""
    text = b" ".join(rng.choice(WORDS) for _ in range(size // 12 + 1))[: size // 2]
    return text + rng.randbytes(size - len(text))


def _layer(path: Path, rng: random.Random, size: int, prefix: str) -> tuple[str, int, str]:
    """A gzip tar layer of about ``size`` bytes of files; (digest, size, diff_id)."""
    diff = hashlib.sha256()

    class _Tee(io.RawIOBase):
        def __init__(self, out: gzip.GzipFile) -> None:
            self.out = out

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            diff.update(b)
            self.out.write(b)
            return len(b)

    with (
        path.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz,
    ):
        with tarfile.open(fileobj=_Tee(gz), mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
            written, n = 0, 0
            for d in range(40):
                info = tarfile.TarInfo(f"{prefix}/d{d:02d}")
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            while written < size:
                n += 1
                r = rng.random()
                fsize = (
                    rng.randrange(256, 16 * 1024)
                    if r < 0.85
                    else rng.randrange(64 * 1024, 1 * MiB)
                    if r < 0.995
                    else rng.randrange(6 * MiB, 20 * MiB)
                )
                fsize = min(fsize, max(1, size - written))
                info = tarfile.TarInfo(f"{prefix}/d{n % 40:02d}/f{n:06d}")
                info.size, info.mode, info.mtime = fsize, 0o644, 1_700_000_000
                tar.addfile(info, io.BytesIO(_payload(rng, fsize)))
                written += fsize
    data_digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return "sha256:" + data_digest, path.stat().st_size, "sha256:" + diff.hexdigest()


def make_image(directory: Path, size_mib: int, seed: int) -> str:
    """An OCI layout with an index over linux/amd64 and linux/arm64; returns its digest."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data: bytes) -> str:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return "sha256:" + d

    per_layer = size_mib * MiB // 4
    entries = []
    for p, arch in enumerate(a.split("/")[1] for a in PLATFORMS):
        layers, diff_ids = [], []
        for i in range(2):
            tmp = directory / f"layer-{p}-{i}.tmp"
            rng = random.Random(f"{seed}:{arch}:{i}")
            digest, size, diff_id = _layer(tmp, rng, per_layer, f"usr/{arch}/l{i}")
            tmp.replace(blobs / digest[7:])
            layers.append(
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest,
                    "size": size,
                }
            )
            diff_ids.append(diff_id)
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": put(config),
                    "size": len(config),
                },
                "layers": layers,
            }
        ).encode()
        entries.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": put(manifest),
                "size": len(manifest),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }
    ).encode()
    digest = put(index)
    (directory / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "digest": digest,
                        "size": len(index),
                        "annotations": {"org.opencontainers.image.ref.name": "latest"},
                    }
                ],
            }
        )
    )
    return digest


def _toc_names(ctd: Containerd, digest: str, flags: list[str]) -> list[str]:
    toc = json.loads(ctd.ctr("images", "get-toc-digest", *flags, "--dump-toc", digest).stdout)
    return sorted(
        e["name"].removeprefix("./").rstrip("/") for e in toc["entries"] if e["type"] != "chunk"
    )


def _manifests(ctd: Containerd, image: str) -> dict[str, dict[str, object]]:
    """The platform manifests of ``image`` in containerd's content store, by ``os/arch``."""
    line = next(
        row for row in ctd.ctr("images", "ls").stdout.splitlines()[1:] if row.split()[0] == image
    )
    index = json.loads(ctd.ctr("content", "get", line.split()[2]).stdout)
    return {
        f"{e['platform']['os']}/{e['platform']['architecture']}": json.loads(
            ctd.ctr("content", "get", str(e["digest"])).stdout
        )
        for e in index["manifests"]
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=320)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--format", choices=["estargz", "zstd-chunked"], default="estargz")
    args = ap.parse_args(argv)
    zstd = args.format == "zstd-chunked"
    toc_flags = ["--zstdchunked"] if zstd else []

    work = args.workdir or Path(tempfile.mkdtemp(prefix="acr-ci-bench-accelerate-"))
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    print(f"bench: writing a {args.size_mib} MiB two-platform image in {work}", flush=True)
    layout = work / "layout"
    if layout.exists():
        import shutil

        shutil.rmtree(layout)
    make_image(layout, args.size_mib, args.seed)
    acr = [sys.executable, "-m", "acr_ci"]
    server = RegistryServer(work / "registry", kind="plain")
    server.start()
    ctd = Containerd(work / "containerd")
    (work / "containerd").mkdir(exist_ok=True)
    ctd.start()
    runs: list[Run] = []
    ok = True
    sizes = {"acr-ci": 0, "ctr-remote": 0}
    try:
        src = f"{server.host}/bench/app:v1"
        push = measure(
            "setup", "acr-ci", [*acr, "push", "--quiet", f"oci-layout:{layout}", src], logs
        )
        if push.returncode:
            print(push.stderr_tail)
            return 1
        runs.append(
            measure(
                "accelerate",
                "acr-ci",
                [*acr, "accelerate", "--quiet", "--format", args.format, src],
                logs,
            )
        )
        ctr = [ctd.ctr_remote, "--address", str(ctd.socket), "--namespace", "acr-ci-test"]
        dst = f"{server.host}/bench/ctr:v1_accelerated"
        runs.append(
            measure(
                "pull",
                "ctr-remote",
                [*ctr, "images", "pull", "--plain-http", "--all-platforms", src],
                logs,
            )
        )
        # zstd:chunked one platform at a time: ctr-remote 0.12's --zstdchunked
        # --all-platforms fails on a layer the platforms share (the times are summed)
        dsts = {p: f"{dst}-{p.replace('/', '-')}" for p in PLATFORMS} if zstd else {"": dst}
        for platform, target in dsts.items():
            which = ["--platform", platform] if platform else ["--all-platforms"]
            flag = "--zstdchunked" if zstd else "--estargz"
            runs.append(
                measure(
                    "convert", "ctr-remote",
                    [*ctr, "images", "convert", flag, "--oci", *which, src, target],
                    logs,
                )
            )  # fmt: skip
        for target in dsts.values():
            runs.append(
                measure(
                    "push", "ctr-remote", [*ctr, "images", "push", "--plain-http", target], logs
                )
            )
        for r in runs:
            if r.returncode:
                ok = False
                print(f"bench: {r.tool} {r.step} failed:\n{r.stderr_tail}")
        if ok:
            twin = f"{server.host}/bench/app:v1_accelerated"
            ctd.ctr("images", "pull", "--plain-http", "--all-platforms", twin)
            for platform, mine in _manifests(ctd, twin).items():
                theirs = _manifests(ctd, dsts.get(platform, dst))[platform]
                for a, b in zip(mine["layers"], theirs["layers"], strict=True):  # type: ignore[call-overload]
                    sizes["acr-ci"] += int(a["size"])
                    sizes["ctr-remote"] += int(b["size"])
                    printed = ctd.ctr(
                        "images", "get-toc-digest", *toc_flags, a["digest"]
                    ).stdout.strip()
                    if printed != a["annotations"]["containerd.io/snapshot/stargz/toc.digest"]:
                        ok = False
                        print(f"bench: TOC digest of {a['digest']} is {printed}, not as annotated")
                    if _toc_names(ctd, a["digest"], toc_flags) != _toc_names(
                        ctd, b["digest"], toc_flags
                    ):
                        ok = False
                        print(
                            f"bench: the TOCs of {a['digest']} and {b['digest']} list other files"
                        )
    finally:
        ctd.stop()
        server.stop()

    by = {(r.tool, r.step): r for r in runs}
    acr_run = by[("acr-ci", "accelerate")]
    secs = {
        s: sum(r.seconds for r in runs if (r.tool, r.step) == ("ctr-remote", s))
        for s in ("pull", "convert", "push")
    }
    peak = {
        s: max(r.max_rss_kib for r in runs if (r.tool, r.step) == ("ctr-remote", s))
        for s in ("pull", "convert", "push")
    }
    ctr_total = sum(secs.values())
    ctr_convert = secs["convert"]
    rss_mib = acr_run.max_rss_kib / 1024
    ratio = acr_run.seconds / ctr_total if ctr_total else float("inf")
    lines = [
        f"format: {args.format}",
        f"{'':24}{'wall s':>10}{'peak RSS MiB':>14}",
        f"{'acr-ci accelerate':24}{acr_run.seconds:10.2f}{rss_mib:14.1f}",
        *(
            f"{'ctr-remote ' + s:24}{secs[s]:10.2f}{peak[s] / 1024:14.1f}"
            for s in ("pull", "convert", "push")
        ),
        f"{'ctr-remote total':24}{ctr_total:10.2f}",
        "",
        f"wall time acr-ci / ctr-remote (pull+convert+push): {ratio:.2f}  "
        f"{'PASS' if ratio <= TARGET_RATIO else 'MISS'} (target <= {TARGET_RATIO})",
        f"wall time acr-ci / ctr-remote convert alone:       {acr_run.seconds / ctr_convert:.2f}",
        f"acr-ci peak RSS: {rss_mib:.1f} MiB  "
        f"{'PASS' if rss_mib <= TARGET_RSS_MIB else 'MISS'} (target <= {TARGET_RSS_MIB:g})",
        f"twin layers: acr-ci {sizes['acr-ci'] / MiB:.1f} MiB, ctr-remote "
        f"{sizes['ctr-remote'] / MiB:.1f} MiB",
        f"checks (TOC digests, same file lists): {'ok' if ok else 'FAILED'}",
    ]
    print("\n".join(lines))
    if args.json:
        doc = {
            "size_mib": args.size_mib,
            "format": args.format,
            "runs": [asdict(r) for r in runs],
            "twin_bytes": sizes,
        }
        args.json.write_text(json.dumps(doc, indent=2))
    missed = ratio > TARGET_RATIO or rss_mib > TARGET_RSS_MIB
    return 1 if not ok or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
