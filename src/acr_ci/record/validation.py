"""The record's JSON Schema, shipped as ``acr_ci/record.schema.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from acr_ci.errors import RecordError


def schema() -> dict[str, Any]:
    """The record's JSON Schema (shipped as ``acr_ci/record.schema.json``)."""
    text = resources.files("acr_ci").joinpath("record.schema.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def validate(doc: Mapping[str, Any]) -> None:
    """Raise :class:`RecordError` naming the first problem when ``doc`` is not a valid record."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise RecordError(
            f"the run record does not match its schema at {where}: {first.message}",
            f"{len(errors)} problem(s) in all; this is a bug in acr-ci, please report it",
        )
