#!/bin/bash
# Sourced by the catalog's e2e harness. The copy and the sign run in pods of their own, so
# one registry Deployment and Service (registry:5000) in the test namespace serves both;
# the acr-ci-signing Secret gets a fresh PKCS#8 EC P-256 key.
kubectl -n "${tns}" create deployment registry --image=docker.io/library/registry:2.8.3 --port=5000
kubectl -n "${tns}" expose deployment registry --port=5000
kubectl -n "${tns}" rollout status deployment/registry --timeout=120s
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "${TMPF}.cosign.key"
kubectl -n "${tns}" create secret generic acr-ci-signing --from-file=cosign.key="${TMPF}.cosign.key"
rm -f "${TMPF}.cosign.key"
