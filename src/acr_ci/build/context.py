"""Where a build's files are, and which registries its base images come from.

Paths: a rule's ``context`` is relative to the config file's directory and its
``dockerfile`` relative to the context. Both are resolved (symlinks included) and must
stay inside the config file's directory: a config is repository content, and a pull
request must not be able to make the builder read ``/etc`` or the runner's home through
``..`` or a symlink. Absolute paths are refused for the same reason.

Base-image registries: the ``FROM`` lines of the Dockerfile, with ``ARG`` defaults and
the plan's build args substituted, name the registries a build pulls from; loopback ones
are reached over plain HTTP, and credentials are looked up for each one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from acr_ci.errors import UsageError
from acr_ci.models import BuildPlan

_VAR_RE = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::[-+]([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)
_ARG_RE = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$", re.IGNORECASE)
_FROM_RE = re.compile(r"^\s*FROM\s+(.*)$", re.IGNORECASE)
MAX_DOCKERFILE = 1024 * 1024


def resolve_paths(plan: BuildPlan, config_dir: Path) -> tuple[Path, Path]:
    """``(context, dockerfile)`` as absolute paths, checked (see module doc)."""
    root = config_dir.resolve()
    rule = plan.rule
    for what, value in (("context", plan.context), ("dockerfile", plan.dockerfile)):
        if Path(value).is_absolute():
            raise UsageError(
                f"rule {rule!r}: {what} {value!r} is an absolute path",
                f"write the {what} relative to the config file's directory",
            )
    context = (root / plan.context).resolve()
    if not context.is_relative_to(root):
        raise UsageError(
            f"rule {rule!r}: context {plan.context!r} leads outside the config file's "
            f"directory {root}",
            "keep the build context inside the repository (no '..' or symlinks out of it)",
        )
    if not context.is_dir():
        raise UsageError(
            f"rule {rule!r}: context {plan.context!r} is not a directory ({context})",
            "context is relative to the config file's directory",
        )
    dockerfile = (context / plan.dockerfile).resolve()
    if not dockerfile.is_relative_to(root):
        raise UsageError(
            f"rule {rule!r}: dockerfile {plan.dockerfile!r} leads outside the config file's "
            f"directory {root}",
            "keep the Dockerfile inside the repository (no '..' or symlinks out of it)",
        )
    if not dockerfile.is_file():
        raise UsageError(
            f"rule {rule!r}: no Dockerfile {plan.dockerfile!r} in context {plan.context!r} "
            f"({dockerfile})",
            "dockerfile is a file name relative to the rule's context",
        )
    return context, dockerfile


def _substitute(text: str, values: Mapping[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        if name in values:
            return values[name]
        return m.group(2) or ""

    return _VAR_RE.sub(repl, text)


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def base_images(dockerfile: Path, args: Mapping[str, str]) -> list[str]:
    """The image references of the Dockerfile's ``FROM`` lines (stage names excluded)."""
    text = dockerfile.read_text(errors="replace")[:MAX_DOCKERFILE]
    global_args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    seen_from = False
    for line in _logical_lines(text):
        arg = _ARG_RE.match(line)
        if arg and not seen_from:
            name, default = arg.group(1), (arg.group(2) or "").strip().strip("\"'")
            global_args[name] = args.get(name, _substitute(default, global_args))
            continue
        m = _FROM_RE.match(line)
        if not m:
            continue
        seen_from = True
        words = [w for w in m.group(1).split() if not w.startswith("--")]
        if not words:
            continue
        image = _substitute(words[0], {**global_args, **args})
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
        if image and image.lower() not in stages and image != "scratch":
            images.append(image)
    return images
