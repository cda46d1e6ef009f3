"""A private containerd (Debian's ``containerd``) and ``ctr-remote`` (Debian's
``stargz-snapshotter``) as the independent reader of eStargz images.

:class:`Containerd` starts ``containerd --config C`` with its own root, state and socket
under a temporary directory (no system service touched) and runs ``ctr-remote --address
SOCK …`` against it. Missing binaries: a skip locally, a failure under ``CI``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tests.support._proc import skip_or_fail

CONTAINERD = "containerd"
CTR_REMOTE = "ctr-remote"
NAMESPACE = "acr-ci-test"


def binaries() -> tuple[str, str]:
    """The paths of ``containerd`` and ``ctr-remote``, or skip/fail."""
    containerd, ctr = shutil.which(CONTAINERD), shutil.which(CTR_REMOTE)
    if not containerd or not ctr:
        skip_or_fail(
            "containerd and ctr-remote are needed (apt-get install containerd stargz-snapshotter)"
        )
    return containerd, ctr


class Containerd:
    """One containerd daemon on a private socket."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.containerd, self.ctr_remote = binaries()
        self.socket = base / "containerd.sock"
        self.log = base / "containerd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        config = self.base / "config.toml"
        config.write_text(
            "\n".join(
                [
                    "version = 2",
                    f'root = "{self.base / "root"}"',
                    f'state = "{self.base / "state"}"',
                    "[grpc]",
                    f'  address = "{self.socket}"',
                    "[ttrpc]",
                    f'  address = "{self.socket}.ttrpc"',
                    "[debug]",
                    '  address = ""',
                    "[metrics]",
                    '  address = ""',
                    # only what reading images needs: no CRI, no shims
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
                    "",
                ]
            )
        )
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(
                [self.containerd, "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"containerd exited: {self.log_tail()}")
            if self.socket.exists():
                probe = self.ctr("version", check=False)
                if probe.returncode == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"containerd did not answer within {timeout} s: {self.log_tail()}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def ctr(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """``ctr-remote --address SOCK --namespace NS ARGS…`` (argv, never a shell)."""
        argv = [self.ctr_remote, "--address", str(self.socket), "--namespace", NAMESPACE, *args]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and r.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}\n{self.log_tail()}"
            )
        return r
