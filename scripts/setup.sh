#!/usr/bin/env bash
# Install what acr-ci's demo and tests need on a bare Debian machine, idempotently.
#   scripts/setup.sh demo   - the package and the tools the demo uses
#   scripts/setup.sh test   - the above plus the test tools
# Python packages go into .venv (created here); system tools come from apt. Needs root
# (or sudo) for apt, for arm64 packages (qemu builds) and for mounting binfmt_misc.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-test}

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# buildah builds (vfs, chroot), qemu for linux/arm64, busybox-static for the base image
# the demo and the tests make, docker-registry for local registries, skopeo to compare.
apt_pkgs=(git ca-certificates docker-registry skopeo buildah qemu-user-static busybox-static)
case "$what" in
  demo) ;;
  # apache2-utils: htpasswd for basic-auth registries; rsync: gitlab-ci-local;
  # debootstrap: the Debian root the image test builds the project's Dockerfile FROM;
  # containerd + stargz-snapshotter (ctr-remote): the independent reader of eStargz twins.
  test) apt_pkgs+=(apache2-utils jq rsync debootstrap containerd stargz-snapshotter) ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

updated=""
apt_update() { [ -n "$updated" ] || { $sudo apt-get update -qq; updated=1; }; }

# busybox-static:arm64 is downloaded (not installed) by the demo and the tests: its
# package list must be known.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: adding the arm64 package architecture"
  $sudo dpkg --add-architecture arm64
  apt_update
fi

missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing apt packages: ${missing[*]}"
  apt_update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! apt-cache show busybox-static:arm64 >/dev/null 2>&1; then
  apt_update
fi

# qemu-user-static registers its binfmt entries only where binfmt_misc is mounted.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  $sudo mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
    || echo "setup: warning: cannot mount binfmt_misc; linux/arm64 builds will not run here" >&2
fi

# The CI front ends' own checkers: GitLab's pipeline runner and Tekton's linter (npm).
if [ "$what" = test ]; then
  if ! command -v npm >/dev/null 2>&1; then  # the machine's Node.js usually brings npm
    apt_update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  npm_tools=("gitlab-ci-local@4.65.0:gitlab-ci-local" "@ibm/tekton-lint:tekton-lint")
  for entry in "${npm_tools[@]}"; do
    pkg=${entry%%:*} bin=${entry##*:}
    want=""
    [[ $pkg == *@[0-9]* ]] && want=${pkg##*@}
    if ! command -v "$bin" >/dev/null 2>&1 \
       || { [ -n "$want" ] && [ "$("$bin" --version 2>/dev/null | tail -n1)" != "$want" ]; }; then
      echo "setup: installing $pkg (npm)"
      $sudo npm install -g --no-fund --no-audit --loglevel=error "$pkg" >/dev/null
    fi
  done
  # The keyless tests' local Sigstore (@sigstore/mock) and independent verifier
  # (@sigstore/verify), from the lockfile in tests/support/sigstore, again when it changes.
  # (@sigstore/mock 0.13.0 declares node >=22; it runs on the machine's node 20.)
  sig=tests/support/sigstore
  if [ ! -f "$sig/node_modules/.package-lock.json" ] \
     || [ "$sig/package-lock.json" -nt "$sig/node_modules/.package-lock.json" ]; then
    echo "setup: installing $sig's npm packages (npm ci)"
    (cd "$sig" && npm ci --no-fund --no-audit --loglevel=error >/dev/null)
  fi
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$py" -m venv .venv
fi
extra="[$what]"
# Re-install only when the project's metadata changed since the last install.
stamp=.venv/.acr-ci-installed-$what
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing acr-ci${extra} into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"
  touch "$stamp"
fi
