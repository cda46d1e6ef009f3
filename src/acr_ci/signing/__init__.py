"""Signatures and attestations that travel with an image, in cosign's classic format.

One module per job: :mod:`.keys` (private keys from the environment, public keys from
files), :mod:`.simplesigning` (the payload a signature signs), :mod:`.dsse` (in-toto
statements in DSSE envelopes), :mod:`.provenance` (the SLSA v1 predicate),
:mod:`.artifacts` (the ``sha256-<hex>.sig``/``.att`` manifests in the registry),
:mod:`.sign` (sign and attest by digest) and :mod:`.verify`. All registry work goes
through :mod:`acr_ci.registry`; ``cryptography`` and PyNaCl are imported where used.
"""
