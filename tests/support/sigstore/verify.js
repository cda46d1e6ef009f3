#!/usr/bin/env node
// An independent check of a Sigstore bundle: sigstore-js's verifier (@sigstore/verify), not
// sigstore-python's. Used by tests/e2e/test_keyless.py.
//
//   node verify.js TRUST_CONFIG BUNDLE ARTIFACT IDENTITY ISSUER
//
// TRUST_CONFIG is a client trust config (its trustedRoot is used) or a bare trusted root.
// ARTIFACT is the signed bytes for a message-signature bundle; for a DSSE bundle it is the
// envelope's payload, which must equal the bundle's. Demands one Rekor entry, one SCT and
// one timestamp, the certificate's SAN = IDENTITY and its OIDC issuer = ISSUER.
// Exit 0 and "verified" on stdout; exit 1 with the verifier's reason on stderr.
'use strict';

const fs = require('fs');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

function main(argv) {
  if (argv.length !== 5) {
    process.stderr.write('usage: verify.js TRUST_CONFIG BUNDLE ARTIFACT IDENTITY ISSUER\n');
    return 2;
  }
  const [trustPath, bundlePath, artifactPath, identity, issuer] = argv;
  const trust = JSON.parse(fs.readFileSync(trustPath, 'utf8'));
  const root = TrustedRoot.fromJSON(trust.trustedRoot || trust);
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  const artifact = fs.readFileSync(artifactPath);

  let entity;
  if (bundle.content.$case === 'dsseEnvelope') {
    // The verifier checks the envelope's signature over its own payload; the payload must
    // also be the statement the caller expects.
    if (!Buffer.from(bundle.content.dsseEnvelope.payload).equals(artifact)) {
      throw new Error('DSSE payload differs from the expected statement');
    }
    entity = toSignedEntity(bundle);
  } else {
    entity = toSignedEntity(bundle, artifact);
  }
  const verifier = new Verifier(toTrustMaterial(root), {
    tlogThreshold: 1,
    ctlogThreshold: 1,
    timestampThreshold: 1,
  });
  verifier.verify(entity, { subjectAlternativeName: identity, extensions: { issuer } });
  process.stdout.write('verified\n');
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`not verified: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
  process.exitCode = 1;
}
