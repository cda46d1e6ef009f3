"""Text from elsewhere made safe to print: the one cleaner for remote-derived strings.

A registry's error body, a webhook receiver's answer, a scanner's stderr or a builder's
last lines can hold anything: ANSI escapes that move the cursor or rewrite the line,
carriage returns that overwrite what came before, and lines that start with ``::`` —
which GitHub's runner executes as workflow commands (``::error::``, ``::add-mask::``,
``::stop-commands::``) even after leading spaces. Everything acr-ci echoes from a remote
goes through :func:`clean_remote` where it enters a message (one line, cut), and every
message acr-ci prints goes through :func:`safe_output` as a last guard (lines kept, each
cleaned).

Cleaning removes escape sequences (CSI, OSC, and two-character ``ESC x``), every other C0
and C1 control character and DEL, and the Unicode bidirectional controls; tabs and line
breaks become spaces (:func:`clean_remote`) or stay line breaks (:func:`safe_output`). A
line whose first non-blank characters are ``::`` gets them as ``: :``, which the runner
does not read as a command.
"""

from __future__ import annotations

import re

REMOTE_LIMIT = 300
"""Characters kept of one remote-derived fragment (a registry's message, scanner stderr)."""
LINE_LIMIT = 2000
"""Characters kept of one printed line."""
ELLIPSIS = "…"

_ESCAPES = re.compile(
    r"""
      (?:\x1b\[|\x9b) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?     # CSI … final
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) [^\x07\x1b\x9c]* (?:\x07|\x1b\\|\x9c)?
                                                                # OSC/DCS/SOS/PM/APC … ST
    | \x1b [\x20-\x2f]* [\x30-\x7e]?                            # ESC x (and a lone ESC)
    """,
    re.VERBOSE,
)
_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_COMMAND = re.compile(r"^([^\S\n]*):(?=:)", re.MULTILINE)


def _strip(text: str) -> str:
    """``text`` without escape sequences; tabs as spaces; line breaks as ``\\n``; no other
    control characters."""
    text = _ESCAPES.sub("", text)
    text = _BREAKS.sub("\n", text).replace("\t", " ")
    return _CONTROLS.sub("", text)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def neutralise_commands(text: str) -> str:
    """Every line starting (after blanks) with ``::`` gets ``: :`` instead."""
    return _COMMAND.sub(r"\1: ", text)


def clean_remote(text: str, limit: int = REMOTE_LIMIT) -> str:
    """Remote-derived ``text`` as one safe line of at most ``limit`` characters."""
    cap = limit * 4 + 64  # enough for the escapes and blanks that go; a 1 MiB body is not read
    one = " ".join(_strip(text[:cap]).split())
    if len(text) > cap and len(one) <= limit:
        one = _cut(one, limit - 1) + ELLIPSIS if one else ELLIPSIS
    return neutralise_commands(_cut(one, limit))


def safe_output(text: str, line_limit: int = LINE_LIMIT) -> str:
    """``text`` to print: its lines kept, each cleaned, neutralised and cut."""
    lines = _strip(text).split("\n")
    return "\n".join(neutralise_commands(_cut(line.rstrip(), line_limit)) for line in lines)


__all__ = ["LINE_LIMIT", "REMOTE_LIMIT", "clean_remote", "neutralise_commands", "safe_output"]
