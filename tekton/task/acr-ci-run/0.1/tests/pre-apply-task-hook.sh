#!/bin/bash
# Sourced by the catalog's e2e harness: a registry sidecar (localhost:5000) for the push.
add_sidecar_registry ${TMPF}
