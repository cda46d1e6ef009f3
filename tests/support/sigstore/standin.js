#!/usr/bin/env node
// A local Sigstore stand-in for the keyless tests: @sigstore/mock's Fulcio, Rekor (v1 API)
// and timestamp authority behind a real HTTP server on 127.0.0.1 (a free port).
//
// @sigstore/mock was written for nock: each handler is {path, fn(body) -> {statusCode,
// response, contentType}} and expects sigstore-js's request shapes. sigstore-python speaks
// the services' real wire formats, so the routes below translate where they differ, as
// the real services' HTTP front ends do:
//   Fulcio: the identity token comes in the Authorization header (not the body) and the CSR
//           is base64 of the PEM text;
//   Rekor:  a dsse v0.0.1 entry is stored the way Rekor stores it (envelope hash, payload
//           hash, signatures with their verifiers), not as the proposed content the client
//           sent (the mock logs what it is given; hashedrekord entries are the same both ways);
//   TSA:    the request is a DER RFC 3161 TimeStampReq (not sigstore-js's JSON), and its
//           nonce may not fit a JavaScript number, so the reply carries the request's own
//           nonce element.
//
// Prints one JSON line on stdout once listening: the base URL and the public material a
// client trust config needs (DER, base64): the Fulcio root, the CT log key, the Rekor key,
// the TSA chain. Stops on SIGTERM/SIGINT or when stdin closes. GET /_standin/requests
// answers how many requests each service served (so a test can tell that it was used).
'use strict';

const http = require('http');
const crypto = require('crypto');
const asn1js = require('asn1js');
const pkijs = require('pkijs');
const {
  initializeCA,
  initializeCTLog,
  initializeTLog,
  initializeTSA,
  fulcioHandler,
  rekorHandler,
  tsaHandler,
} = require('@sigstore/mock');

const MAX_BODY = 1 << 20; // a CSR, a log entry or a timestamp request is a few KiB

const SHA_OIDS = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

function der(keyObject) {
  return keyObject.export({ format: 'der', type: 'spki' }).toString('base64');
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// sigstore-python's Fulcio request -> the body @sigstore/mock's handler parses.
function fulcioBody(raw, headers) {
  const auth = headers.authorization || '';
  const match = /^Bearer (.+)$/.exec(auth);
  if (!match) throw new Error('missing bearer identity token');
  const json = JSON.parse(raw.toString('utf8'));
  const out = { credentials: { oidcIdentityToken: match[1] } };
  if (json.certificateSigningRequest) {
    out.certificateSigningRequest = Buffer.from(json.certificateSigningRequest, 'base64').toString(
      'utf8',
    );
  } else if (json.publicKeyRequest) {
    out.publicKeyRequest = json.publicKeyRequest;
  } else {
    throw new Error('neither certificateSigningRequest nor publicKeyRequest');
  }
  return JSON.stringify(out);
}

// A proposed Rekor entry -> the entry Rekor would log (its canonical body).
function rekorBody(raw) {
  const entry = JSON.parse(raw.toString('utf8'));
  if (entry.kind !== 'dsse' || !entry.spec || !entry.spec.proposedContent) {
    return JSON.stringify(entry);
  }
  const { envelope, verifiers } = entry.spec.proposedContent;
  if (typeof envelope !== 'string' || !Array.isArray(verifiers) || verifiers.length !== 1) {
    throw new Error('dsse entry: expected an envelope string and one verifier');
  }
  const env = JSON.parse(envelope);
  const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
  return JSON.stringify({
    apiVersion: entry.apiVersion,
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256(envelope) },
      payloadHash: { algorithm: 'sha256', value: sha256(Buffer.from(env.payload, 'base64')) },
      signatures: env.signatures.map((sig) => ({ signature: sig.sig, verifier: verifiers[0] })),
    },
  });
}

// A DER TimeStampReq -> the JSON @sigstore/mock's TSA handler parses; remembers the nonce.
function tsaBody(raw, pending) {
  const parsed = asn1js.fromBER(new Uint8Array(raw).buffer);
  if (parsed.offset === -1) throw new Error('timestamp request is not DER');
  const tsq = new pkijs.TimeStampReq({ schema: parsed.result });
  const algo = SHA_OIDS[tsq.messageImprint.hashAlgorithm.algorithmId];
  if (!algo) throw new Error('unsupported hash algorithm in timestamp request');
  pending.nonce = tsq.nonce; // an asn1js.Integer, any size
  return JSON.stringify({
    artifactHash: Buffer.from(tsq.messageImprint.hashedMessage.valueBlock.valueHexView).toString(
      'base64',
    ),
    hashAlgorithm: algo,
    certificates: Boolean(tsq.certReq),
    tsaPolicyOID: tsq.reqPolicy,
  });
}

async function main() {
  const counts = { fulcio: 0, rekor: 0, tsa: 0 };
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const url = `http://127.0.0.1:${port}`;

  const caKeys = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ctKeys = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const rekorKeys = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const tsaKeys = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

  const ctlog = await initializeCTLog(ctKeys);
  const ca = await initializeCA(caKeys, ctlog);
  const tlog = await initializeTLog(url, rekorKeys);
  const tsa = await initializeTSA(tsaKeys);

  // Whole seconds in the TSA's genTime, as the real timestamp authority (Go's asn1) writes
  // it: with milliseconds, DER drops trailing zeros (".12Z"), which @sigstore/core 4.0.1's
  // time parser refuses ("invalid time": it takes exactly 0 or 3 fraction digits).
  tsa.getCurrentTime = () => new Date(Math.floor(Date.now() / 1000) * 1000);

  // The TSA's reply nonce: the request's own element (see the header).
  const pending = { nonce: undefined };
  const tstInfo = tsa.tstInfo.bind(tsa);
  tsa.tstInfo = (req) => {
    const info = tstInfo(req);
    if (pending.nonce !== undefined) info.nonce = pending.nonce;
    return info;
  };

  const routes = {
    '/api/v2/signingCert': { name: 'fulcio', handler: fulcioHandler(ca), adapt: fulcioBody },
    '/api/v1/log/entries': { name: 'rekor', handler: rekorHandler(tlog), adapt: rekorBody },
    '/api/v1/timestamp': { name: 'tsa', handler: tsaHandler(tsa), adapt: (raw) => tsaBody(raw, pending) },
  };

  server.on('request', async (req, res) => {
    const send = (status, body, type) => {
      res.writeHead(status, { 'Content-Type': type || 'text/plain' });
      res.end(body);
    };
    try {
      if (req.method === 'GET' && req.url === '/_standin/requests') {
        send(200, JSON.stringify(counts), 'application/json');
        return;
      }
      const route = routes[req.url];
      if (!route || req.method !== 'POST') {
        send(404, `no such endpoint: ${req.method} ${req.url}\n`);
        return;
      }
      const raw = await readBody(req);
      let body;
      try {
        body = route.adapt(raw, req.headers);
      } catch (e) {
        send(400, `${e.message}\n`);
        return;
      }
      counts[route.name] += 1;
      const out = await route.handler.fn(body);
      send(out.statusCode, out.response, out.contentType);
    } catch (e) {
      send(500, `${e.message}\n`);
    }
  });

  const info = {
    url,
    fulcio_root: ca.rootCertificate.toString('base64'),
    ctlog_key: der(ctKeys.publicKey),
    rekor_key: der(rekorKeys.publicKey),
    tsa_chain: [tsa.intCertificate.toString('base64'), tsa.rootCertificate.toString('base64')],
  };
  process.stdout.write(`${JSON.stringify(info)}\n`);

  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

main().catch((e) => {
  process.stderr.write(`sigstore stand-in: ${e.stack || e}\n`);
  process.exit(1);
});
