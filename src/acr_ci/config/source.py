"""Reading ``.acr-ci.yml``: file → YAML tree with positions → plain JSON-like data.

The YAML is read with ruamel.yaml's round-trip loader, which keeps the line and
column of every key and item (``.lc``). A :class:`Document` holds both the
ruamel tree (for positions) and a plain copy (dicts, lists, str, int, float,
bool, None) that the JSON Schema and the checks read.

Everything that goes wrong here — a missing file, a directory, bad UTF-8,
a YAML syntax error, a duplicate key, an empty file, a top level that is not a
mapping, a value YAML can give but JSON cannot hold — is a located
:class:`~acr_ci.errors.ConfigProblem` raised as one :class:`~acr_ci.errors.ConfigError`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from acr_ci.errors import MAX_SHOWN, ConfigError, ConfigProblem, clip

Path = tuple[str | int, ...]
"""Where a value is in the document: mapping keys and list indices."""

MAX_BYTES = 1024 * 1024
"""A config larger than this is refused (it is not a hand-written rule file)."""
MAX_NODES = 100_000
"""Alias expansion beyond this many values is refused (``billion laughs``)."""
MAX_DEPTH = 64
MAX_MESSAGE = 400
"""A problem's message is cut to this many characters (it may repeat user values)."""

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_RAW_TOKEN = re.compile(r"[^\s,\]\}#]+")
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*)://([^/\s?#@'\"]*@)?([^/\s?#'\"]*)[^\s'\"]*")
_DUP_KEY = re.compile(r'found duplicate key "(?P<key>.*?)" with value')
_LONG_WORD = re.compile(rf"\S{{{MAX_SHOWN + 1},}}")


def format_path(path: Path) -> str:
    """``("build", "rules", 1, "tags")`` → ``build.rules[1].tags``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += '["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


def redact_urls(text: str) -> str:
    """Replace every URL in ``text`` by ``scheme://host``: paths, queries and user info may carry tokens."""
    return _URL.sub(lambda m: f"{m.group(1)}://{m.group(3)}", text)


def clip_message(text: str) -> str:
    """``text`` with every long run of non-blanks (a value repeated whole) cut, and the
    whole cut to :data:`MAX_MESSAGE` characters."""
    return clip(_LONG_WORD.sub(lambda m: clip(m.group(0)), text), MAX_MESSAGE)


def show(value: object, limit: int = 60) -> str:
    """A short, safe rendering of a user value for a message ('' when it should not be shown)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if not isinstance(value, str):
        return ""
    if len(value) > limit or "://" in value or "?" in value or "@" in value:
        return ""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return ""
    return repr(value)


@dataclass(frozen=True)
class Document:
    """A parsed config: the ruamel tree (positions) and its plain copy (values)."""

    file: str
    """The file name as the user gave it."""
    text: str
    """The file's text."""
    tree: Any
    """The ruamel.yaml round-trip tree (``CommentedMap`` at the top)."""
    data: dict[str, Any] = field(default_factory=dict)
    """The plain copy: dict, list, str, int, float, bool, None only (filled by :func:`read`)."""
    problems: list[ConfigProblem] = field(default_factory=list)
    """Problems found while making the plain copy (e.g. non-string keys)."""

    def locate(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at ``path`` (of its key when ``key``).

        Falls back to the nearest enclosing node that has a position.
        """
        node: Any = self.tree
        line, col = _start(node)
        for i, part in enumerate(path):
            last = i == len(path) - 1
            try:
                lc: Any = getattr(node, "lc", None)
                if isinstance(part, int) and isinstance(node, list):
                    line, col = lc.item(part)
                    node = node[part]
                elif isinstance(part, str) and isinstance(node, dict):
                    key_pos = lc.key(part)
                    value_pos = lc.value(part)
                    # a value that starts on a later line (a block, or nothing: null) is
                    # shown at its key, where the reader looks
                    use_key = (last and key) or value_pos[0] != key_pos[0]
                    line, col = key_pos if use_key else value_pos
                    node = node[part]
                else:
                    break
            except (KeyError, IndexError, AttributeError, TypeError):
                break
        return line + 1, col + 1

    def raw(self, path: Path) -> str:
        """The source text of the plain scalar at ``path`` (for "YAML read X as Y" messages)."""
        line, col = self.locate(path)
        lines = self.text.splitlines()
        if not 1 <= line <= len(lines):
            return ""
        m = _RAW_TOKEN.match(lines[line - 1], col - 1)
        return m.group(0) if m else ""

    def problem(self, path: Path, message: str, *, key: bool = False) -> ConfigProblem:
        """A located problem for the value (or key) at ``path``."""
        line, col = self.locate(path, key=key)
        return ConfigProblem(
            self.file,
            line,
            col,
            clip_message(format_path(path)),
            clip_message(redact_urls(message)),
        )


def _start(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is not None and getattr(lc, "line", None) is not None:
        return int(lc.line), int(lc.col)
    return 0, 0


def read(file: str) -> Document:
    """Read and parse ``file``; raise :class:`ConfigError` for anything that is not a YAML mapping."""
    text = _read_text(file)
    tree = _parse(file, text)
    if tree is None:
        raise ConfigError(
            [ConfigProblem(file, 1, 1, "", "the config is empty")],
            "start with `version: 1`, `image: registry.example.com/team/app` and `build: {rules: [...]}`; "
            "`acr-ci schema` lists every key",
        )
    if not isinstance(tree, dict):
        line, col = _root_position(text)
        kind = "a list" if isinstance(tree, list) else "a single value"
        raise ConfigError(
            [
                ConfigProblem(
                    file,
                    line,
                    col,
                    "",
                    f"the top level must be a mapping of keys (version, image, build, …), not {kind}",
                )
            ],
            "write `key: value` lines at the top level, starting with `version: 1`",
        )
    doc = Document(file=file, text=text, tree=tree)
    plain = _plain(doc, tree, (), [0], set())
    if isinstance(plain, dict):
        doc.data.update(plain)
    return doc


def _read_text(file: str) -> str:
    import os

    hint = "pass --config FILE or set ACR_CI_CONFIG, or create .acr-ci.yml in the repository root"

    def fail(message: str, hint: str | None = hint) -> ConfigError:
        return ConfigError([ConfigProblem(file, 0, 0, "", message)], hint)

    if os.path.isdir(file):
        raise fail(
            "is a directory, not a config file", "name the YAML file itself, e.g. .acr-ci.yml"
        )
    try:
        with open(file, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise fail("no such file") from None
    except PermissionError:
        raise fail("cannot be read: permission denied", "check the file's permissions") from None
    except OSError as e:
        raise fail(f"cannot be read: {e.strerror or type(e).__name__}", None) from None
    if len(data) > MAX_BYTES:
        raise fail(
            f"is larger than {MAX_BYTES // 1024} KiB: not a rule config",
            "check that --config names the right file",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(
            [ConfigProblem(file, line, col, "", "is not valid UTF-8 text")],
            "save the file as UTF-8",
        ) from None


@functools.cache
def _constructor() -> Any:
    from ruamel.yaml.constructor import RoundTripConstructor

    class _Constructor(RoundTripConstructor):
        """Dates stay text: the checks validate them with a located message."""

    _Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_str)
    return _Constructor


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.Constructor = _constructor()
    yaml.allow_duplicate_keys = False
    return yaml


def _parse(file: str, text: str) -> Any:
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return _yaml().load(text)
    except DuplicateKeyError as e:
        # ruamel's own message quotes both values (maybe a tokened URL): say it our way
        m = _DUP_KEY.search(str(e.problem or ""))
        key = m.group("key") if m else ""
        line, col = _mark(e.problem_mark)
        shown = show(key)
        raise ConfigError(
            [ConfigProblem(file, line, col, "", f"duplicate key {shown}".rstrip())],
            "each key may appear only once in a mapping: remove or merge the repeated one",
        ) from None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = _mark(mark)
        what = str(e.problem or e.context or "invalid YAML")
        if e.problem and e.context:
            context = str(e.context)
            if context.startswith("expected"):
                what = f"{context}, {what}"
            elif e.context_mark is not None:
                cline, ccol = _mark(e.context_mark)
                what = f"{what} ({context} that starts at line {cline}, column {ccol})"
        raise ConfigError(
            [
                ConfigProblem(
                    file, line, col, "", clip_message(redact_urls(f"YAML syntax error: {what}"))
                )
            ],
            "check indentation (spaces, not tabs), colons and quotes around this point",
        ) from None
    except YAMLError as e:
        raise ConfigError(
            [ConfigProblem(file, 0, 0, "", redact_urls(f"YAML error: {type(e).__name__}"))],
            "check the file's YAML syntax",
        ) from None
    except (AttributeError, KeyError, IndexError) as e:
        # ruamel's constructor fails this way on some self-referring structures, e.g. a
        # merge key that names the anchor of its own mapping (`x: &a {<<: *a}`)
        raise ConfigError(
            [
                ConfigProblem(
                    file,
                    0,
                    0,
                    "",
                    f"YAML structure error ({type(e).__name__}): an anchor, alias or merge key "
                    "(<<) refers to itself",
                )
            ],
            "check the file's anchors, aliases and merge keys: a merge key may only name "
            "an anchor defined before the mapping it is in",
        ) from None
    except (ValueError, TypeError, RecursionError) as e:
        raise ConfigError(
            [ConfigProblem(file, 0, 0, "", f"YAML value error: {type(e).__name__}")],
            "check the file's values (dates, numbers, tags)",
        ) from None


def _mark(mark: Any) -> tuple[int, int]:
    if mark is None:
        return 0, 0
    return int(mark.line) + 1, int(mark.column) + 1


def _root_position(text: str) -> tuple[int, int]:
    for i, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip()
        if stripped and not stripped.startswith(("#", "%", "---")):
            return i, len(line) - len(stripped) + 1
    return 1, 1


def _plain(doc: Document, node: Any, path: Path, counter: list[int], stack: set[int]) -> Any:
    """A plain copy of ``node``; odd YAML values become problems (and ``None``)."""
    from ruamel.yaml.comments import TaggedScalar
    from ruamel.yaml.scalarbool import ScalarBoolean

    counter[0] += 1
    if counter[0] > MAX_NODES:
        if counter[0] == MAX_NODES + 1:
            doc.problems.append(
                doc.problem(
                    path, f"the document expands to more than {MAX_NODES} values (aliases?)"
                )
            )
        return None
    if isinstance(node, bool | ScalarBoolean):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        if not math.isfinite(node):
            doc.problems.append(
                doc.problem(path, f"{node!r} is not a number a config can use: write a finite one")
            )
        return float(node)
    if isinstance(node, str):
        if not _is_text(node):
            doc.problems.append(doc.problem(path, _NOT_TEXT))
            return _as_text(node)
        return str(node)
    if node is None:
        return None
    if len(path) > MAX_DEPTH or id(node) in stack:
        doc.problems.append(doc.problem(path, "the document nests too deeply (recursive alias?)"))
        return None
    if isinstance(node, dict):
        stack.add(id(node))
        out: dict[str, Any] = {}
        for k, v in node.items():
            if not isinstance(k, str):
                doc.problems.append(_key_problem(doc, node, path, k))
                continue
            if not _is_text(k):
                doc.problems.append(doc.problem(path, f"a key {_NOT_TEXT}"))
                continue
            out[k] = _plain(doc, v, (*path, k), counter, stack)
        stack.discard(id(node))
        return out
    if isinstance(node, list):
        stack.add(id(node))
        items = [_plain(doc, v, (*path, i), counter, stack) for i, v in enumerate(node)]
        stack.discard(id(node))
        return items
    if isinstance(node, TaggedScalar):
        tag = str(getattr(node.tag, "value", node.tag))
        doc.problems.append(
            doc.problem(path, f"YAML tag {show(tag) or 'here'} is not supported: remove it")
        )
        return str(node.value) if isinstance(node.value, str) else None
    doc.problems.append(
        doc.problem(path, f"a YAML {type(node).__name__} value is not supported here")
    )
    return None


_NOT_TEXT = "is not Unicode text: it holds a lone surrogate escape such as \\ud800"


def _is_text(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (YAML's ``"\\ud800"`` escapes cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _as_text(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def _key_problem(doc: Document, node: Any, path: Path, key: Any) -> ConfigProblem:
    try:
        line, col = node.lc.key(key)
        line, col = line + 1, col + 1
    except (KeyError, AttributeError, TypeError):
        line, col = doc.locate(path)
    if isinstance(key, bool):
        message = (
            f"key {show(key)} is a boolean, not a name (YAML 1.1 reads on/off/yes/no as booleans): "
            "quote it"
        )
    elif key is None:
        message = "a key is empty (null): write a name"
    elif isinstance(key, int | float):
        message = f"key {show(key)} is a number: keys are names; quote it if it is meant as one"
    else:
        message = "a key must be a plain name, not a list or mapping"
    return ConfigProblem(doc.file, line, col, clip_message(format_path(path)), message)


def walk_items(value: Any, path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """``(path, item)`` for every mapping item of a list (skipping anything else)."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                yield (*path, i), item
