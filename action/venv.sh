#!/usr/bin/env bash
# The composite action's install step: a virtualenv under $RUNNER_TEMP with the pinned
# dependencies (action/requirements.lock, --require-hashes) and acr-ci from the action's
# own files (--no-deps), reused when the action runs again in the same job.
#   ACR_CI_SETUP_PYTHON   actions/setup-python's python-path (empty when it did not run)
#   ACR_CI_RUNNER_PYTHON  the runner's python3 (empty when setup-python ran)
# Writes python=PATH (the venv's interpreter) to $GITHUB_OUTPUT.
#
# The venv's name is a hash of the interpreter's version, the lock, pyproject.toml and
# every file under src/: another version of the action gets its own venv, the same one
# the venv it made before.
set -euo pipefail

here=${GITHUB_ACTION_PATH:?}
temp=${RUNNER_TEMP:?}
python=${ACR_CI_SETUP_PYTHON:-${ACR_CI_RUNNER_PYTHON:-}}
if [ -z "$python" ]; then
  echo "::error title=acr-ci action::no Python to install acr-ci with"
  exit 1
fi

key=$("$python" - "$here" <<'PY'
import hashlib
import sys
from pathlib import Path

root = Path(sys.argv[1])
h = hashlib.sha256(sys.version.encode())
files = [root / "action" / "requirements.lock", root / "pyproject.toml"]
files += sorted(p for p in (root / "src").rglob("*") if "__pycache__" not in p.parts)
for path in files:
    if path.is_file():
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
print(h.hexdigest()[:20])
PY
)
venv="$temp/acr-ci-venv-$key"

if [ -f "$venv/.acr-ci-complete" ]; then
  echo "acr-ci: reusing $venv"
else
  rm -rf "$venv" "$venv.src"
  "$python" -m venv "$venv"
  pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
  "${pip[@]}" install --quiet --require-hashes --only-binary :all: \
    -r "$here/action/requirements.lock"
  # Build from a copy: the action's checkout (the workspace itself for `uses: ./`) stays
  # clean. The build backend (setuptools, wheel) is in the lock, so no unpinned build
  # environment is fetched.
  mkdir -p "$venv.src"
  cp -R "$here/pyproject.toml" "$here/README.md" "$here/src" "$venv.src/"
  "${pip[@]}" install --quiet --no-deps --no-build-isolation --no-compile "$venv.src"
  rm -rf "$venv.src"
  touch "$venv/.acr-ci-complete"
fi

"$venv/bin/python" -m acr_ci --version
echo "python=$venv/bin/python" >>"$GITHUB_OUTPUT"
