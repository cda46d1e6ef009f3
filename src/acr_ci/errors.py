"""One exception tree for acr-ci.

Every error a user can meet is an :class:`AcrError`: it carries a one-line
message (what failed), an optional hint (what would be right) and the exit
code the CLI maps it to. ``cli.py`` catches the base class once; library code
never exits and never prints a traceback.

Messages must never contain secrets (passwords, tokens, tokened URLs): callers
build them from names and redacted values only.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3


class AcrError(Exception):
    """Base of every error acr-ci reports to a user."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The text shown to the user: the message, then the hint if any."""
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message

    def __repr__(self) -> str:  # never more than the message: no secrets in reprs
        return f"{type(self).__name__}({self.message!r})"


class UsageError(AcrError):
    """Bad command-line usage or bad input values (flags, refs). Exit 2."""

    exit_code = EXIT_USAGE


class RefError(UsageError):
    """The git ref could not be determined or is not acceptable."""


class TagError(UsageError):
    """A tag template rendered to something unusable for this ref."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file, located precisely."""

    file: str
    """Path of the config file as the user gave it."""
    line: int
    """1-based line number (0 when unknown)."""
    column: int
    """1-based column number (0 when unknown)."""
    path: str
    """Where in the document, as a dotted path (``build.rules[0].tags``)."""
    message: str
    """What is wrong and what would be right."""

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where = f"{where}:{self.line}:{self.column}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class ConfigError(AcrError):
    """The rule config is missing, unreadable or invalid. Exit 2.

    Holds every problem found in one run, each with file, line, column and path.
    """

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[ConfigProblem], hint: str | None = None) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = str(self.problems[0])
        else:
            message = f"{len(self.problems)} problems in the config:\n" + "\n".join(
                str(p) for p in self.problems
            )
        super().__init__(message, hint)


class BuildError(AcrError):
    """A build failed. Exit 1."""


class MergeError(AcrError):
    """The digests files of a merge do not make one image per rule (a platform missing,
    two digests for one, runners that disagree on ref, sha or time). Exit 1; no tag moved."""


class AccelerateError(AcrError):
    """A layer could not be rewritten as an accelerated (eStargz) layer. Exit 1; the original
    image is untouched."""


class RegistryError(AcrError):
    """A registry operation failed. Subclasses say which kind. Exit 1."""


class NotFoundError(RegistryError):
    """The registry has no such repository, manifest, blob or tag."""


class UnauthorizedError(RegistryError):
    """The registry refused our credentials (or we had none)."""


class DeniedError(RegistryError):
    """Authenticated, but not allowed (or the operation is disabled, e.g. deletes)."""


class RateLimitedError(RegistryError):
    """The registry kept answering 429 after every retry."""

    def __init__(
        self, message: str, hint: str | None = None, *, retry_after: float | None = None
    ) -> None:
        super().__init__(message, hint)
        self.retry_after: float | None = retry_after
        """Seconds the registry's last ``Retry-After`` asked to wait, if it said."""


class TransientError(RegistryError):
    """A failure worth retrying from the start (connection lost, 5xx, 429) after retries ran out
    or where the request body could not be replayed."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.status: int | None = status
        """The HTTP status that failed, when the failure was an answer."""
        self.retry_after: float | None = retry_after
        """Seconds the registry's ``Retry-After`` asked to wait, if it said."""


class DigestMismatchError(RegistryError):
    """Content did not hash to the digest it was fetched or pushed as."""


class UnsupportedError(RegistryError):
    """The registry or content uses something acr-ci does not support."""


class ImmutableTagError(RegistryError):
    """An immutable tag already points at a different digest."""


class SigningError(AcrError):
    """A signature or attestation could not be made or attached (exit 1)."""


class SigningKeyError(UsageError):
    """The signing key (or its password, or a public key) is missing or unusable. Exit 2.

    Messages name the environment variable or file, never the key or the password."""


class NotVerifiedError(AcrError):
    """``acr-ci verify`` found no valid signature (or attestation). Exit 1.

    :attr:`message` is the one-line reason: no signature, wrong key, digest mismatch."""


class RecordError(AcrError):
    """A run record could not be read back, or does not match its schema."""


class ScanError(AcrError):
    """A scanner could not run, failed, or wrote something unreadable. Exit 1."""


class ReportError(UsageError):
    """A report file is unreadable, of an unknown format, or not what its format says. Exit 2."""


class GateError(AcrError):
    """The blocked image could not be backed up or deleted. Exit 1."""


class StatusError(AcrError):
    """Commit statuses could not be posted (the run itself is not affected)."""


class OutputError(AcrError):
    """An output file (run record, report, ``--output-json``) could not be written. Exit 1."""


MAX_SHOWN = 80
"""Characters of an untrusted value that a message repeats (:func:`clip`)."""


def clip(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis and its length when cut: a value
    echoed in a message never makes the message long."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


EXPECTED_ERRORS: tuple[type[Exception], ...] = (AcrError, OSError)
"""What a stage that must go on (the chain's steps, one mirror, one trigger) records as a
failure and survives: acr-ci's own errors (registry, network, builder, config, scanner)
and OS/file-system errors (``requests``' exceptions are ``OSError`` too). Anything else is
a bug: it reaches the top-level handler, which says so."""


def reason(e: BaseException) -> str:
    """A one-line reason for an expected error, for a record or a log line (never a
    traceback, never an exception's own text for non-acr-ci errors: it may hold a URL)."""
    if isinstance(e, AcrError):
        return e.message
    if isinstance(e, OSError) and e.strerror:
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror}{where}"
    return f"{type(e).__name__}"
