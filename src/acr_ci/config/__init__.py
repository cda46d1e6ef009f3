"""The rule config (``.acr-ci.yml``): load, validate, and the JSON Schema.

``load(path)`` reads the file (``path``, else ``$ACR_CI_CONFIG``, else
``.acr-ci.yml``), checks it against the JSON Schema and the rules a schema cannot
express, and returns a typed :class:`~acr_ci.config.model.Config`. Anything wrong
is one :class:`~acr_ci.errors.ConfigError` listing every problem with file, line,
column and path.
"""

from __future__ import annotations

from acr_ci.config.loader import DEFAULT_FILE, ENV_VAR, load, resolve_path
from acr_ci.config.model import Config
from acr_ci.config.schemas import schema, schema_text

__all__ = ["DEFAULT_FILE", "ENV_VAR", "Config", "load", "resolve_path", "schema", "schema_text"]
