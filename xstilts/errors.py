"""Error types. A `UserError` is a mistake in input (config, data, arguments): the CLI prints its message
alone (no traceback) and exits with `EXIT_USER_ERROR`."""

EXIT_USER_ERROR = 2
# A training job that received SIGTERM/SIGUSR1 saved its state and stopped; rerunning it resumes.
EXIT_PREEMPTED = 75  # EX_TEMPFAIL
# Training diverged (non-finite loss).
EXIT_DIVERGED = 3


class UserError(Exception):
    """Bad input: the message names the file, split, row, key or value at fault and what was expected."""


class DataError(UserError):
    """Malformed data in a source file."""

    def __init__(self, message: str, *, file: str | None = None, split: str | None = None,
                 row: int | None = None, field: str | None = None):
        where = ", ".join(f"{k} {v}" for k, v in (("file", file), ("split", split), ("row", row), ("field", field))
                          if v is not None)
        super().__init__(f"{where}: {message}" if where else message)
        self.file, self.split, self.row, self.field = file, split, row, field


class Preempted(Exception):
    """Raised inside training when a preemption signal arrived and state has been saved."""


class Diverged(Exception):
    """Raised when the training loss becomes NaN or infinite."""
