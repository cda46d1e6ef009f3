#!/usr/bin/env bash
# The composite action's first step: which Python runs acr-ci.
#   ACR_CI_PYTHON_CHOICE  the action's `python` input: auto, runner or setup
# Writes to $GITHUB_OUTPUT: setup=true|false (run actions/setup-python?) and, when the
# runner's python3 will do, python=PATH. It will do when it is 3.11 or newer and can make
# a virtualenv (venv and ensurepip importable).
set -euo pipefail

choice=${ACR_CI_PYTHON_CHOICE:-auto}
case "$choice" in
  auto | runner | setup) ;;
  *)
    echo "::error title=acr-ci action inputs::input python must be auto, runner or setup"
    exit 2
    ;;
esac

usable() {
  "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

runner_python=""
if [ "$choice" != setup ] && found=$(command -v python3) && usable "$found"; then
  runner_python=$found
fi

if [ -n "$runner_python" ]; then
  echo "acr-ci runs on the runner's $("$runner_python" --version) ($runner_python)"
  {
    echo "setup=false"
    echo "python=$runner_python"
  } >>"$GITHUB_OUTPUT"
elif [ "$choice" = runner ]; then
  echo "::error title=acr-ci action inputs::python: runner, but the runner's python3 is" \
    "missing, older than 3.11 or cannot make a venv (use python: auto or setup)"
  exit 2
else
  echo "acr-ci runs on a Python from actions/setup-python"
  echo "setup=true" >>"$GITHUB_OUTPUT"
fi
