"""What the chain signs and attests for a pushed image, with a key or keyless.

:class:`Signer` is the one ``sign``/``attest`` pair the chain (and ``acr-ci sign``) calls:
cosign's classic ``.sig``/``.att`` with a key (:mod:`.sign`), or Sigstore bundles as OCI
referrers keyless (:mod:`.bundles`). :func:`signer_for` makes it from the config's
``sign:`` section. :func:`sign_targets` is the rule ``sign --recursive`` follows: the
index, then each platform manifest (cosign, Kyverno and policy-controller check the
digest a user names; podman and CRI-O the platform instance they pull).
:func:`provenance_for` is the SLSA predicate of one built image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acr_ci.errors import EXPECTED_ERRORS
from acr_ci.registry.client import Client
from acr_ci.registry.reference import Reference
from acr_ci.signing.bundles import (
    KeylessSigner,
    attest_image_keyless,
    sign_image_keyless,
    trust_config_path,
)
from acr_ci.signing.keys import SigningKey
from acr_ci.signing.sign import SignResult, attest_image, sign_image

if TYPE_CHECKING:
    from acr_ci.config.model import Config, SignConfig
    from acr_ci.models import BuildPlan, RefContext


@dataclass(frozen=True)
class Signer:
    """Signs and attests by digest: with :attr:`key`, or keyless with :attr:`keyless`."""

    key: SigningKey | None = None
    keyless: KeylessSigner | None = None

    def sign(self, client: Client, image: Reference) -> SignResult:
        if self.keyless is not None:
            return sign_image_keyless(client, image, self.keyless)
        assert self.key is not None
        return sign_image(client, image, self.key)

    def attest(
        self,
        client: Client,
        image: Reference,
        predicate_type: str,
        predicate: Mapping[str, Any],
    ) -> SignResult:
        if self.keyless is not None:
            return attest_image_keyless(client, image, self.keyless, predicate_type, predicate)
        assert self.key is not None
        return attest_image(client, image, self.key, predicate_type, predicate)


def signer_for(
    settings: SignConfig, config_dir: Path | None = None, env: Mapping[str, str] | None = None
) -> Signer:
    """The signer ``sign:`` describes: the key in ``$key_env``, or (``keyless: true``) the
    CI's OIDC token with the trust config. Raises an :class:`~acr_ci.errors.AcrError`
    naming the variable when the key or token is missing or unusable."""
    if settings.keyless:
        trust = trust_config_path(settings.trust_config, config_dir, env)
        return Signer(keyless=KeylessSigner.from_env(trust, env))
    from acr_ci.signing.keys import load_signing_key

    return Signer(key=load_signing_key(settings.key_env, settings.password_env, env))


def sign_targets(image: Reference, platforms: Mapping[str, str]) -> list[tuple[str, Reference]]:
    """``(name, REPO@DIGEST)`` of what is signed: the index, then each platform manifest."""
    assert image.digest
    out = [("index", image)]
    out += [(p, image.with_digest(d)) for p, d in platforms.items() if d != image.digest]
    return out


def resolved_base_images(client: Client, names: Sequence[str]) -> tuple[str, ...]:
    """Each base image as ``REPO@DIGEST`` (a tag resolved now; one that cannot be resolved
    is kept by name, without a digest)."""
    out: list[str] = []
    for name in names:
        try:
            ref = Reference.parse(name, what="base image")
            out.append(f"{ref.name}@{ref.digest or client.resolve(ref).digest}")
        except EXPECTED_ERRORS:
            out.append(name.split("@", 1)[0])
    return tuple(dict.fromkeys(out))


def provenance_for(
    config: Config,
    ref: RefContext,
    plan: BuildPlan,
    platforms: Sequence[str],
    base_images: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The SLSA v1 provenance predicate of the image ``plan`` built (its rule and args)."""
    from types import MappingProxyType

    from acr_ci.signing import provenance

    base = provenance.from_run(
        ref, config=config, image=plan.image, platforms=platforms, base_images=base_images, env=env
    )
    exact = dataclasses.replace(base, rule=plan.rule, args=MappingProxyType(dict(plan.args)))
    return provenance.predicate(exact)


def dockerfile_base_images(plan: BuildPlan, config_dir: Path) -> list[str]:
    """The ``FROM`` images of the plan's Dockerfile (empty when it cannot be read)."""
    from acr_ci.build.context import base_images, resolve_paths

    try:
        _, dockerfile = resolve_paths(plan, config_dir)
        return base_images(dockerfile, plan.args)
    except EXPECTED_ERRORS:
        return []
