"""The run record: what ``acr-ci run`` did, step by step, as one JSON document.

The CI-native counterpart of the hosted console's "Record" page. One document per run
(``--record FILE``, default :data:`DEFAULT_PATH`), valid against ``record.schema.json``
shipped in the ``acr_ci`` package (:func:`schema`, :func:`validate`):

* ``ref`` — the git ref the run was about; ``plan`` — the builds, in the shape of
  ``acr-ci plan --format json``;
* ``images`` — one entry per build: its rule, repository, tags, digest, overall status,
  and ``steps``: ``build`` (or ``merge``, for ``run --merge``), ``push``, ``scan``,
  ``accelerate`` (with ``accelerate:``), one ``sign`` step per signed digest (with
  ``sign:``) and one ``attest`` step per attestation (with ``attest:``), then one ``sync``
  step per destination and one
  ``trigger`` step per trigger. Every step has ``status`` (succeeded | failed | blocked
  | skipped), ``started``, ``finished`` (ISO 8601, UTC), ``duration`` (seconds), a
  one-line ``reason`` when it did not succeed, and ``detail`` (digests, tags, finding
  counts, per-mirror and per-delivery results with HTTP status);
* ``status`` and ``exit_code`` of the whole run (3 if any image was blocked, else 1 if any
  step failed, else 0).

Each step's ``detail`` is typed (:data:`StepDetail`: :class:`BuildDetail`,
:class:`MergeDetail`, :class:`PushDetail`, :class:`ScanDetail`, :class:`GateFailure`,
:class:`AccelerateDetail`, :class:`SignDetail`, :class:`SyncDetail`, :class:`TriggerDetail`, :class:`NoDetail`). :meth:`RunRecord.from_json` (and :func:`read`
for a file) turns a written record back into the typed one, validated by the schema;
writing it again gives the same document.

The modules, each importing only those before it: ``shape`` (reading JSON back, times,
:func:`redact`), ``details`` (the typed step details), ``validation`` (the schema),
``model`` (the records), ``files`` (:func:`write`, :func:`read`), ``summary``
(:func:`summary_markdown`). Import from this package, not from them.
"""

from __future__ import annotations

from acr_ci.errors import RecordError  # lives in errors.py; importable here too
from acr_ci.models import Status
from acr_ci.record.details import (
    DETAILS,
    AccelerateDetail,
    BuildDetail,
    GateFailure,
    MergeDetail,
    NoDetail,
    PushDetail,
    ScanDetail,
    SignDetail,
    StepDetail,
    SyncCopy,
    SyncDetail,
    TriggerDetail,
    detail_from_json,
)
from acr_ci.record.files import DEFAULT_PATH, MAX_RECORD_BYTES, read, write
from acr_ci.record.model import (
    RECORD_KIND,
    RECORD_VERSION,
    STEP_NAMES,
    ImageRecord,
    RunRecord,
    StepRecord,
)
from acr_ci.record.shape import redact
from acr_ci.record.summary import summary_markdown
from acr_ci.record.validation import schema, validate

__all__ = [
    "DEFAULT_PATH",
    "DETAILS",
    "MAX_RECORD_BYTES",
    "RECORD_KIND",
    "RECORD_VERSION",
    "STEP_NAMES",
    "AccelerateDetail",
    "BuildDetail",
    "GateFailure",
    "ImageRecord",
    "MergeDetail",
    "NoDetail",
    "PushDetail",
    "RecordError",
    "RunRecord",
    "ScanDetail",
    "SignDetail",
    "Status",
    "StepDetail",
    "StepRecord",
    "SyncCopy",
    "SyncDetail",
    "TriggerDetail",
    "detail_from_json",
    "read",
    "redact",
    "schema",
    "summary_markdown",
    "validate",
    "write",
]
