#!/usr/bin/env bash
# Install what acr-ci's demo and tests need on a bare Debian machine, idempotently.
#   scripts/setup.sh demo   - the package and the tools the demo uses
#   scripts/setup.sh test   - the above plus the test tools
# Python packages go into .venv (created here); system tools come from apt.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-test}

apt_pkgs=(git ca-certificates)
case "$what" in
  demo) apt_pkgs+=(docker-registry skopeo) ;;
  test) apt_pkgs+=(docker-registry skopeo apache2-utils) ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing apt packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$py" -m venv .venv
fi
extra=""
[ "$what" = test ] && extra="[test]"
# Re-install only when the project's metadata changed since the last install.
stamp=.venv/.acr-ci-installed-$what
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing acr-ci${extra} into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"
  touch "$stamp"
fi
