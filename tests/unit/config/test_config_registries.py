"""``registries:``: per-registry request limits in ``.acr-ci.yml``."""

from __future__ import annotations

from pathlib import Path

import pytest

from acr_ci import config
from acr_ci.config.model import RegistryLimit
from acr_ci.errors import ConfigError


def load(tmp_path: Path, body: str) -> config.Config:
    path = tmp_path / ".acr-ci.yml"
    path.write_text(f"version: 1\nimage: reg.example.com/team/app\n{body}\n")
    return config.load(str(path))


def test_limits_per_host_in_file_order(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        'registries:\n  "Reg.Example.com:5000": {max_concurrent: 2, max_per_second: 5}\n  mirror.lan: {}',
    )
    assert cfg.registries == (
        RegistryLimit("reg.example.com:5000", 2, 5.0),
        RegistryLimit("mirror.lan", None, None),
    )
    assert load(tmp_path, "").registries == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('registries: {"bad host!": {max_concurrent: 2}}', "must be a registry host"),
        ("registries: {reg.io: {max_concurrent: 0}}", "at least 1"),
        ("registries: {reg.io: {max_concurrent: 65}}", "at most 64"),
        ("registries: {reg.io: {max_concurrent: 2.5}}", "max_concurrent"),
        ("registries: {reg.io: {max_per_second: 0}}", "max_per_second"),
        ("registries: {reg.io: {max_per_second: .inf}}", "at most 10000"),
        ("registries: {reg.io: {jobs: 1}}", "unknown key 'jobs'"),
        ("registries: [reg.io]", "must be a mapping"),
    ],
)
def test_bad_limits_are_config_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, body)


def test_the_command_layer_gives_the_limits_to_the_client(tmp_path: Path) -> None:
    from acr_ci.cli.common import config_client
    from acr_ci.registry.limits import Limit

    cfg = load(tmp_path, "registries:\n  reg.example.com: {max_concurrent: 2, max_per_second: 5}")
    with config_client(cfg, env={"ACR_CI_MAX_CONCURRENT": "3"}) as client:
        assert client.limit_for("reg.example.com:443") == Limit(2, 5.0)
        assert client.limit_for("other.example.com") == Limit(3, None)
