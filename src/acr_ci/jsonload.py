"""Reading JSON that someone else wrote: a size cap and a nesting cap, one clean error.

``json.loads`` on hostile input has two failure modes a caller does not expect: a huge
document costs memory and time, and a deeply nested one (``[[[[…``, 200,000 deep) raises
:class:`RecursionError`. :func:`loads_bounded` checks both before parsing, so every
document acr-ci reads from a registry, an OCI layout, a docker config or a scanner report
is refused with an :class:`~acr_ci.errors.AcrError` instead.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from acr_ci.errors import AcrError, UnsupportedError

MAX_DEPTH = 100
"""The deepest nesting of arrays and objects accepted (an OCI index needs about 6)."""
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
"""The default size cap: the distribution spec's manifest limit."""

_STRING_RE = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(data: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in a JSON text (brackets inside strings do not count);
    linear in the size, no recursion."""
    brackets = _STRING_RE.sub(b"", data).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, *accumulate(_STEP[b] for b in brackets))


def loads_bounded(
    data: bytes | str,
    *,
    what: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    error: type[AcrError] = UnsupportedError,
    hint: str | None = None,
    invalid: str = "is not valid JSON",
) -> Any:
    """Parse JSON ``data`` (bytes or text) that names ``what`` in its errors.

    Raises ``error`` (an :class:`AcrError` subclass; :class:`UnsupportedError` by default)
    when ``data`` is over ``max_bytes``, nested deeper than ``max_depth``, or not JSON
    (including invalid UTF-8; ``invalid`` words that case). Never :class:`RecursionError`, :class:`ValueError` or
    :class:`UnicodeDecodeError`.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise error(f"{what} is larger than {max_bytes} bytes", hint)
    depth = json_depth(raw)
    if depth > max_depth:
        raise error(f"{what} is nested {depth} levels deep (at most {max_depth} allowed)", hint)
    try:
        return json.loads(raw)
    except RecursionError:  # not reached after the depth check; kept as a last guard
        raise error(f"{what} is nested too deeply", hint) from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        where = f" (line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
        raise error(f"{what} {invalid}{where}", hint) from None
