"""Reading buildah's build log for what happened to the registry cache, on lines buildah
1.28.2 printed here (tests/e2e/test_build_cache.py runs the real thing)."""

from __future__ import annotations

import pytest

from acr_ci.build.cache import ERROR_LIMIT, BuildahCacheLog, error_text
from acr_ci.models import BuildCache

CACHE = BuildCache(ref="127.0.0.1:9/cache/app:ignored")
KEY = "e7d82e014cd6e93c59c981fbf9e1f5e0d94473ab32696baebbb53d4b41863aba"
PULLED = f"--> Cache pulled from remote 127.0.0.1:9/cache/app:{KEY}"
PUSHING = f"--> Pushing cache 127.0.0.1:9/cache/app:{KEY}"
READ_WARNING = (
    'time="2026-12-03T11:23:05Z" level=warning msg="Failed, retrying in 2s ... (1/3). Error: initializing '
    f"source docker://127.0.0.1:9/cache/app:{KEY}: pinging container registry 127.0.0.1:9: Get "
    '\\"http://127.0.0.1:9/v2/\\": dial tcp 127.0.0.1:9: connect: connection refused"'
)
PUSH_ERROR = (
    'Error: failed pushing cache to {{{"127.0.0.1:9" "cache/app"} "' + KEY + '"}}: trying to reuse blob '
    "sha256:1a56daca07c5013c3c4235972e9417b46189ba0a925177f8c36d7f03be82fe86 at destination: checking whether "
    "a blob sha256:1a56 exists in 127.0.0.1:9/cache/app: unauthorized: authentication required"
)
PUSH_ERROR_MULTI = "\t* failed pushing cache to " + PUSH_ERROR.split("failed pushing cache to ", 1)[1]
SHOWN = (
    f"failed pushing cache to 127.0.0.1:9/cache/app:{KEY}: trying to reuse blob "
    "sha256:1a56daca07c5013c3c4235972e9417b46189ba0a925177f8c36d7f03be82fe86 at destination: checking whether "
    "a blob sha256:1a56 exists in 127.0.0.1:9/cache/app: unauthorized: authentication required"
)
# a base image pull warning names another repository: not the cache's
OTHER_WARNING = READ_WARNING.replace("docker://127.0.0.1:9/cache/app:", "docker://127.0.0.1:9/base/busybox:")


@pytest.mark.parametrize(
    ("case", "lines", "pulled", "pushed", "read_error", "write_error"),
    [
        ("filled", [PUSHING, "STEP 3/3: COPY f /f", PUSHING], 0, 2, None, None),
        ("hits", [PULLED, f"--> Using cache {KEY}", PULLED], 2, 0, None, None),
        ("unreachable-read", [READ_WARNING, READ_WARNING], 0, 0,
         "initializing source docker://127.0.0.1:9/cache/app:" + KEY + ": pinging container registry "
         '127.0.0.1:9: Get "http://127.0.0.1:9/v2/": dial tcp 127.0.0.1:9: connect: connection refused', None),
        ("base-image-warning", [OTHER_WARNING], 0, 0, None, None),
        ("push-refused", [PUSHING, PUSH_ERROR], 0, 1, None, SHOWN),
        ("push-refused-multi", [PUSHING, PUSH_ERROR_MULTI, PUSH_ERROR_MULTI], 0, 1, None, SHOWN),
    ],
)
def test_buildah_cache_log(
    case: str, lines: list[str], pulled: int, pushed: int, read_error: str | None, write_error: str | None
) -> None:
    watch = BuildahCacheLog(CACHE)
    for line in lines:
        watch.feed(line)
    assert (watch.pulled, watch.pushed, watch.read_error, watch.write_error) == (
        pulled, pushed, read_error, write_error
    ), case


def test_error_text_is_one_bounded_line() -> None:
    text = error_text("Error: " + "x" * 5000 + "\n\x1b[31mred")
    assert len(text) <= ERROR_LIMIT and "\n" not in text and "\x1b" not in text
