"""Registry transfer benchmark: acr-ci push/copy side by side with skopeo, on loopback.

Run on demand (not in CI), from the repository root:

    python bench/registry.py                  # 500 MiB, one run each
    python bench/registry.py --size-mib 100 --repeat 3 --json out.json

It builds a two-platform OCI layout (one layer each: 80 % of the size for linux/amd64, 20 %
for linux/arm64 — 400 + 100 MiB by default — seeded random data), then for every repeat
starts two fresh local registries (P1, P2) and measures, each command in its own process:

  push   acr-ci push oci-layout:DIR P1/bench/acr:1
         skopeo copy --all --preserve-digests oci:DIR docker://P1/bench/skopeo:1
  copy   acr-ci copy P1/bench/acr:1 P2/bench/acr:1
         skopeo copy --all --preserve-digests docker://P1/bench/skopeo:1 docker://P2/…
  rerun  acr-ci copy again, through byte-counting proxies (zero faults) in front of P1
         and P2: bytes sent to the destination and read from the source

It prints wall time (median over repeats), peak RSS (max over repeats, from wait4's
rusage via GNU time, see ``measure``), the acr-ci/skopeo ratios, the re-run bytes and
PASS/MISS against the targets. Every pushed/copied tag is checked to serve the layout's
index digest. Exit status: 1 if a command failed or a digest is wrong, 0 otherwise
(``--strict``: also 1 on any MISS).
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

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support._proc import REGISTRY_BINARY  # noqa: E402
from tests.support.faultproxy import FaultProxy  # noqa: E402
from tests.support.layout import Layout, MiB, make_layout  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

TARGET_RATIO = 1.0
TARGET_RSS_MIB = 64.0
TARGET_RERUN_BYTES = MiB
INDEX_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@dataclass
class Run:
    """One measured command."""

    step: str
    tool: str
    argv: list[str]
    seconds: float
    max_rss_kib: int
    returncode: int
    stderr_tail: str = ""


@dataclass
class Results:
    size_mib: int
    repeat: int
    runs: list[Run] = field(default_factory=list)
    rerun_sent: list[int] = field(default_factory=list)
    rerun_read: list[int] = field(default_factory=list)
    digest_errors: list[str] = field(default_factory=list)

    def of(self, step: str, tool: str) -> list[Run]:
        return [r for r in self.runs if r.step == step and r.tool == tool]


GNU_TIME = "/usr/bin/time"


def measure(step: str, tool: str, argv: list[str], log_dir: Path) -> Run:
    """Run ``argv`` in a fresh process; wall time, and peak RSS of its process tree.

    The peak comes from GNU time's ``%M`` when ``/usr/bin/time`` exists: time forks a
    small child that execs the command, so the number is the command's own. (wait4 on a
    child spawned straight from this Python process would report at least this process's
    RSS: Linux keeps the high-water mark across fork/vfork and exec.) Without GNU time,
    wait4's rusage is used and the figure is an upper bound.
    """
    stamp = time.monotonic_ns()
    log = log_dir / f"{step}-{tool}-{stamp}.log"
    rss_file = log_dir / f"{step}-{tool}-{stamp}.rss"
    wrapped = argv
    if os.access(GNU_TIME, os.X_OK):
        wrapped = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *argv]
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            wrapped, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    max_rss_kib = int(usage.ru_maxrss)  # Linux: KiB
    if wrapped is not argv:
        max_rss_kib = int(rss_file.read_text().split()[-1])
    tail = ""
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    return Run(step, tool, argv, seconds, max_rss_kib, proc.returncode, tail)


def served_digest(registry_url: str, repo: str, tag: str) -> str | None:
    import requests

    answer = requests.head(
        f"{registry_url}/v2/{repo}/manifests/{tag}", headers={"Accept": INDEX_ACCEPT}, timeout=30
    )
    return answer.headers.get("Docker-Content-Digest") if answer.status_code == 200 else None


def acr_ci_command() -> list[str]:
    found = shutil.which("acr-ci")
    return [found] if found else [sys.executable, "-m", "acr_ci"]


def one_round(layout: Layout, work: Path, res: Results, order: int, *, keep: bool) -> None:
    acr = acr_ci_command()
    skopeo = shutil.which("skopeo") or "skopeo"
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (
        RegistryServer(work / f"p1-{order}") as p1,
        RegistryServer(work / f"p2-{order}") as p2,
    ):
        push = {
            "acr-ci": [*acr, "push", "--quiet", layout.ref, f"{p1.host}/bench/acr:1"],
            "skopeo": [
                skopeo,
                "copy",
                "--quiet",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                layout.skopeo_ref,
                f"docker://{p1.host}/bench/skopeo:1",
            ],
        }
        copy = {
            "acr-ci": [*acr, "copy", "--quiet", f"{p1.host}/bench/acr:1", f"{p2.host}/bench/acr:1"],
            "skopeo": [
                skopeo,
                "copy",
                "--quiet",
                "--all",
                "--preserve-digests",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                f"docker://{p1.host}/bench/skopeo:1",
                f"docker://{p2.host}/bench/skopeo:1",
            ],
        }
        # Alternate which tool goes first so neither always gets the warmer caches.
        tools = ["acr-ci", "skopeo"] if order % 2 == 0 else ["skopeo", "acr-ci"]
        for step, commands, target in (("push", push, p1), ("copy", copy, p2)):
            for tool in tools:
                run = measure(step, tool, commands[tool], logs)
                res.runs.append(run)
                repo = "bench/acr" if tool == "acr-ci" else "bench/skopeo"
                got = served_digest(target.url, repo, "1") if run.returncode == 0 else None
                if got != layout.index_digest:
                    res.digest_errors.append(
                        f"{step}/{tool} round {order}: {target.host}/{repo}:1 serves {got}, "
                        f"expected {layout.index_digest}"
                    )

        with FaultProxy(p1.host) as src_proxy, FaultProxy(p2.host) as dst_proxy:
            rerun = [
                *acr,
                "copy",
                "--quiet",
                f"{src_proxy.host}/bench/acr:1",
                f"{dst_proxy.host}/bench/acr:1",
            ]
            run = measure("rerun", "acr-ci", rerun, logs)
            res.runs.append(run)
            if run.returncode == 0:
                res.rerun_sent.append(dst_proxy.bytes_up + src_proxy.bytes_up)
                res.rerun_read.append(src_proxy.bytes_down + dst_proxy.bytes_down)
    if not keep:  # 2 GiB of registry storage per round at the default size
        shutil.rmtree(p1.storage, ignore_errors=True)
        shutil.rmtree(p2.storage, ignore_errors=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(res: Results) -> tuple[list[str], bool]:
    lines: list[str] = []
    all_met = True
    lines.append(f"image: {res.size_mib} MiB, 2 platforms; repeats: {res.repeat}")
    lines.append(f"{'step':<6} {'tool':<7} {'wall s (median)':>16} {'peak RSS MiB':>13}  runs")
    medians: dict[tuple[str, str], float] = {}
    peaks: dict[tuple[str, str], float] = {}
    for step in ("push", "copy", "rerun"):
        for tool in ("acr-ci", "skopeo"):
            runs = [r for r in res.of(step, tool) if r.returncode == 0]
            failed = len(res.of(step, tool)) - len(runs)
            if not res.of(step, tool):
                continue
            if runs:
                medians[step, tool] = statistics.median(r.seconds for r in runs)
                peaks[step, tool] = max(r.max_rss_kib for r in runs) / 1024
                lines.append(
                    f"{step:<6} {tool:<7} {medians[step, tool]:>16.2f} {peaks[step, tool]:>13.1f}  "
                    + " ".join(f"{r.seconds:.2f}" for r in runs)
                    + (f"  ({failed} FAILED)" if failed else "")
                )
            else:
                lines.append(f"{step:<6} {tool:<7} {'FAILED':>16}")
    lines.append("")
    for step in ("push", "copy"):
        a, s = medians.get((step, "acr-ci")), medians.get((step, "skopeo"))
        if a is None or s is None:
            lines.append(f"{step} ratio acr-ci/skopeo: n/a (a command failed)  MISS")
            all_met = False
            continue
        ratio = a / s
        ok = ratio <= TARGET_RATIO
        all_met &= ok
        lines.append(
            f"{step} ratio acr-ci/skopeo: {ratio:.2f} (target <= {TARGET_RATIO})  {verdict(ok)}"
        )
    acr_peak = max((v for (_, tool), v in peaks.items() if tool == "acr-ci"), default=None)
    if acr_peak is None:
        lines.append("acr-ci peak RSS: n/a  MISS")
        all_met = False
    else:
        ok = acr_peak <= TARGET_RSS_MIB
        all_met &= ok
        lines.append(
            f"acr-ci peak RSS: {acr_peak:.1f} MiB (target <= {TARGET_RSS_MIB:.0f})  {verdict(ok)}"
        )
    if res.rerun_sent:
        sent = max(res.rerun_sent)
        ok = sent < TARGET_RERUN_BYTES
        all_met &= ok
        lines.append(
            f"re-run bytes sent: {sent} (max over runs; target < {TARGET_RERUN_BYTES})  {verdict(ok)}; "
            f"bytes received: {max(res.rerun_read)}"
        )
    else:
        lines.append("re-run bytes sent: n/a (the re-run failed)  MISS")
        all_met = False
    for r in res.runs:
        if r.returncode != 0:
            lines.append(f"FAILED ({r.returncode}): {' '.join(r.argv)}\n{r.stderr_tail}")
    lines.extend(f"DIGEST MISMATCH: {e}" for e in res.digest_errors)
    return lines, all_met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=500, help="image size (default 500)")
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="runs; wall time is the median"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep layout, registries and logs here")
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write the raw results as JSON"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.size_mib < 2 or args.repeat < 1:
        parser.error("--size-mib must be >= 2 and --repeat >= 1")
    for tool in (REGISTRY_BINARY, "skopeo"):
        if shutil.which(tool) is None:
            print(
                f"bench: {tool} not found (apt-get install docker-registry skopeo)", file=sys.stderr
            )
            return 2

    owned = args.workdir is None
    work = Path(tempfile.mkdtemp(prefix="acr-ci-bench-")) if owned else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        amd64 = args.size_mib * 4 // 5
        started = time.perf_counter()
        layout = make_layout(
            work / "layout",
            platforms=("linux/amd64", "linux/arm64"),
            layer_sizes={
                "linux/amd64": [amd64 * MiB],
                "linux/arm64": [(args.size_mib - amd64) * MiB],
            },
            seed=args.seed,
        )
        print(
            f"layout: {layout.path} ({layout.total_bytes / MiB:.1f} MiB, index {layout.index_digest[:19]}…)"
            f" built in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        res = Results(size_mib=args.size_mib, repeat=args.repeat)
        for i in range(args.repeat):
            one_round(layout, work / f"round-{i}", res, i, keep=not owned)
            print(f"round {i + 1}/{args.repeat} done", flush=True)
        lines, all_met = report(res)
        print("\n".join(lines))
        if args.json:
            args.json.write_text(json.dumps(asdict(res), indent=2) + "\n")
        failed = any(r.returncode != 0 for r in res.runs) or bool(res.digest_errors)
        if failed:
            return 1
        return 1 if args.strict and not all_met else 0
    finally:
        if owned:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
