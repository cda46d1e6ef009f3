#!/bin/bash
# Sourced by the catalog's e2e harness. The build Tasks and the merge Task run in pods of
# their own, so a registry sidecar (one per pod) cannot serve them all: one registry
# Deployment and Service (registry:5000) in the test namespace serves every Task.
kubectl -n "${tns}" create deployment registry --image=docker.io/library/registry:2.8.3 --port=5000
kubectl -n "${tns}" expose deployment registry --port=5000
kubectl -n "${tns}" rollout status deployment/registry --timeout=120s
kubectl apply -n "${tns}" -f "$(dirname "${BASH_SOURCE[0]}")/../../../acr-ci-build/0.1/acr-ci-build.yaml"
