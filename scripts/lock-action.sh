#!/usr/bin/env bash
# Regenerate action/requirements.lock: the GitHub Action's runtime dependencies
# (acr-ci[statuses]: ruamel.yaml, jsonschema, requests, PyGithub, python-gitlab and what
# they need), pinned with hashes, for every platform the composite action runs on
# (CPython 3.11+ on Linux x86_64 and aarch64; --universal keeps markers, not one platform).
#
#   scripts/lock-action.sh           # rewrite the lock from PyPI
#   UV=/path/to/uv scripts/lock-action.sh
#
# The action installs it with `pip install --require-hashes -r action/requirements.lock`,
# then acr-ci itself from the action's checkout with `--no-deps`. Commit the result; a
# change to the lock changes the action's venv key, so runners build a fresh venv.
set -euo pipefail
cd "$(dirname "$0")/.."

uv=${UV:-}
if [ -z "$uv" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" install --quiet uv
  uv="$tmp/venv/bin/uv"
fi

# action/build-requirements.in: pyproject.toml's build backend (setuptools, wheel), locked
# too, so that acr-ci itself builds with --no-build-isolation (no unpinned build env).
"$uv" pip compile --quiet pyproject.toml action/build-requirements.in --extra statuses \
  --generate-hashes --universal --python-version 3.11 \
  --custom-compile-command scripts/lock-action.sh \
  --output-file action/requirements.lock
