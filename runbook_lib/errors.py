"""Errors an administrator can act on.

Each carries a one-line message and the exit code the CLI returns for it, so no caller ever
has to show a traceback to explain what went wrong.
"""


class RunbookError(Exception):
    """Base class: a problem explained in one line, not a bug."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: a notebook cell fails with one line."""
        return [f"{type(self).__name__}: {self}"]


class UsageError(RunbookError):
    """The call itself is wrong: a missing option, a bad value, a path that is not there."""

    exit_code = 2


class InputError(UsageError):
    """An input file or directory is missing or cannot be read."""


class PoolError(RunbookError):
    """The pool (or simulator) refused or failed a request."""


class CredentialError(UsageError):
    """A credential is missing, or was offered where credentials must never go."""
