"""A two-platform base image for real builds: Debian's ``busybox-static``, amd64 + arm64.

* :func:`ensure_qemu_aarch64` registers ``qemu-aarch64`` (from Debian's
  ``qemu-user-static``, ``/usr/lib/binfmt.d/qemu-aarch64.conf``) in
  ``/proc/sys/fs/binfmt_misc`` when it is not registered yet (needs root and a mounted
  binfmt_misc), so linux/arm64 ``RUN`` steps work here.
* :func:`busybox_binaries` finds Debian's ``busybox-static`` for amd64 (installed:
  ``/bin/busybox``) and arm64 (a ``.deb`` fetched with ``apt-get download
  busybox-static:arm64`` after ``dpkg --add-architecture arm64 && apt-get update``,
  then unpacked with ``dpkg-deb -x``).
* :func:`write_busybox_layout` assembles a multi-platform OCI image layout (index → one
  manifest per platform, one layer each: ``/bin/busybox`` plus its applet symlinks),
  reproducibly (mtimes 0), through the registry client's own layout store.

What cannot be done here is a :class:`~acr_ci.devkit.DevkitError` saying what to install
or run.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from acr_ci.devkit import DevkitError, require_tool
from acr_ci.registry.layout import OciLayout
from acr_ci.registry.media import (
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    Platform,
    sha256_digest,
)

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
QEMU_AARCH64_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
AMD64_BUSYBOX = Path("/bin/busybox")
ARM64_DEB_ENV = "ACR_CI_TEST_BUSYBOX_ARM64_DEB"
"""Path of a ``busybox-static_*_arm64.deb`` to use instead of downloading one."""

PLATFORMS = {"amd64": ("linux", "amd64"), "arm64": ("linux", "arm64")}
"""The architectures :func:`write_busybox_layout` knows → ``(os, architecture)``."""
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def ensure_qemu_aarch64() -> None:
    """Make sure arm64 binaries run here through qemu (register the binfmt entry if needed)."""
    entry = BINFMT_DIR / "qemu-aarch64"
    if entry.exists():
        if entry.read_text().splitlines()[0].strip() != "enabled":
            raise DevkitError(f"{entry} is registered but disabled", f"echo 1 > {entry}")
        return
    if not (BINFMT_DIR / "register").exists():
        raise DevkitError(
            f"binfmt_misc is not mounted at {BINFMT_DIR}",
            f"mount -t binfmt_misc binfmt_misc {BINFMT_DIR} (needs root)",
        )
    if not QEMU_AARCH64_CONF.exists():
        raise DevkitError(f"{QEMU_AARCH64_CONF} missing", "apt-get install qemu-user-static")
    line = next(
        (
            raw.strip()
            for raw in QEMU_AARCH64_CONF.read_text().splitlines()
            if raw.strip() and not raw.startswith("#")
        ),
        "",
    )
    try:
        (BINFMT_DIR / "register").write_text(line)
    except OSError as e:
        if not entry.exists():  # another process may have registered it meanwhile
            raise DevkitError(
                f"cannot register qemu-aarch64 in binfmt_misc ({e})", "run as root"
            ) from e


def busybox_binaries(workdir: Path) -> dict[str, Path]:
    """``{"amd64": path, "arm64": path}`` of static busybox binaries (see the module doc)."""
    if not AMD64_BUSYBOX.exists():
        raise DevkitError(f"{AMD64_BUSYBOX} missing", "apt-get install busybox-static")
    deb = _arm64_deb(workdir)
    target = workdir / "busybox-arm64"
    if not (target / "bin" / "busybox").exists():
        dpkg_deb = require_tool("dpkg-deb", "dpkg")
        subprocess.run([dpkg_deb, "-x", str(deb), str(target)], check=True)
    return {"amd64": AMD64_BUSYBOX, "arm64": target / "bin" / "busybox"}


def _arm64_deb(workdir: Path) -> Path:
    given = os.environ.get(ARM64_DEB_ENV)
    if given:
        if not Path(given).is_file():
            raise DevkitError(
                f"${ARM64_DEB_ENV} names {given!r}, which is not a file",
                "point it at a downloaded busybox-static_*_arm64.deb, or unset it",
            )
        return Path(given)
    download = workdir / "deb"
    download.mkdir(parents=True, exist_ok=True)
    found = sorted(download.glob("busybox-static_*_arm64.deb"))
    if not found:
        apt_get = require_tool("apt-get", "apt")
        proc = subprocess.run(
            [apt_get, "download", "busybox-static:arm64"],
            cwd=download,
            capture_output=True,
            text=True,
            check=False,
        )
        found = sorted(download.glob("busybox-static_*_arm64.deb"))
        if proc.returncode != 0 or not found:
            raise DevkitError(
                "cannot download busybox-static:arm64 "
                f"({proc.stderr.strip().splitlines()[-1:] or proc.returncode})",
                "run `dpkg --add-architecture arm64 && apt-get update` first, or set "
                f"${ARM64_DEB_ENV} to a downloaded .deb",
            )
    return found[0]


def _applets() -> list[str]:
    out = subprocess.run(
        [str(AMD64_BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout
    return sorted({a for a in out.split() if a and a != "busybox" and "/" not in a})


@dataclass(frozen=True)
class BaseLayout:
    """A busybox OCI layout written by :func:`write_busybox_layout`."""

    path: Path
    """The layout directory (``oci-layout:PATH`` for ``acr-ci push``)."""
    index_digest: str
    """The digest of the image index ``index.json`` points at."""
    manifests: dict[str, str]
    """arch → manifest digest."""


def _blob(layout: OciLayout, media_type: str, data: bytes) -> Descriptor:
    desc = Descriptor(media_type, sha256_digest(data), len(data))
    layout.put_blob(desc, [data])
    return desc


def _manifest(layout: OciLayout, doc: dict[str, object], media_type: str) -> Manifest:
    manifest = Manifest.from_bytes(json.dumps(doc).encode(), media_type, where="busybox image")
    layout.put_manifest(manifest, manifest.digest)
    return manifest


def _rootfs_tar(busybox: Path, applets: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)

        for d in ("bin", "etc", "usr", "usr/local", "usr/local/bin", "root", "var"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        data = busybox.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.mode = 0o755
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for applet in applets:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            link.mode = 0o777
            tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.mode = 0o644
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return buf.getvalue()


def write_busybox_layout(
    path: Path, binaries: dict[str, Path], applets: list[str] | None = None
) -> BaseLayout:
    """A busybox image (one manifest per entry of ``binaries``) as an OCI layout at ``path``
    (reproducible: mtimes 0). ``applets`` default to what the amd64 busybox lists."""
    layout = OciLayout(path, create=True)
    applets = _applets() if applets is None else applets
    descriptors: list[Descriptor] = []
    manifests: dict[str, str] = {}
    for arch, busybox in sorted(binaries.items()):
        os_name, oci_arch = PLATFORMS[arch]
        raw = _rootfs_tar(busybox, applets)
        diff_id = sha256_digest(raw)
        layer = _blob(layout, OCI_LAYER_GZIP, gzip.compress(raw, mtime=0))
        config = {
            "architecture": oci_arch,
            "os": os_name,
            "config": {"Env": ["PATH=/usr/local/bin:/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "acr-ci tests: busybox-static from Debian"}],
        }
        config_desc = _blob(layout, OCI_CONFIG, json.dumps(config).encode())
        manifest = _manifest(
            layout,
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config_desc.to_json(),
                "layers": [layer.to_json()],
            },
            OCI_MANIFEST,
        )
        manifests[arch] = manifest.digest
        descriptors.append(
            Descriptor(
                OCI_MANIFEST,
                manifest.digest,
                len(manifest.data),
                platform=Platform(os=os_name, architecture=oci_arch),
            )
        )
    index = _manifest(
        layout,
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [d.to_json() for d in descriptors],
        },
        OCI_INDEX,
    )
    layout.set_entries([Descriptor(OCI_INDEX, index.digest, len(index.data))])
    i_digest = index.digest
    return BaseLayout(path=path, index_digest=i_digest, manifests=manifests)


__all__ = [
    "PLATFORMS",
    "BaseLayout",
    "busybox_binaries",
    "ensure_qemu_aarch64",
    "write_busybox_layout",
]
