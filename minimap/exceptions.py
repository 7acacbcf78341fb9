"""Every error minimap raises, and the exceptions a task may raise to steer its own outcome."""

from __future__ import annotations


class MinimapError(Exception):
    """Something went wrong in minimap."""

    #: The exit code the CLI uses for this error (2: bad input, as for click's usage errors).
    exit_code = 2

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class DefinitionError(MinimapError):
    """The DAG is not valid."""


class DagFileError(MinimapError):
    """The DAG file could not be loaded."""


class SnapshotError(MinimapError):
    """The DAG structure stored with a run cannot be read by this version of minimap."""


class DatabaseError(MinimapError):
    """The database could not be used."""

    #: Whether waiting may help (the server went away, a connection dropped, a timeout): the loops of
    #: `minimap run` and the daemons retry with backoff. Otherwise they stop and say why.
    transient = True


class DatabaseRefused(DatabaseError):
    """The database refuses what minimap asks: it is read-only, the user lacks privileges, or its schema is
    not one this minimap knows. Waiting does not help."""

    transient = False


class ConfigError(MinimapError):
    """A setting (an environment variable or an option) cannot be used."""


class NotFoundError(MinimapError):
    """No such run, task or map index."""


class ClearError(MinimapError):
    """These instances cannot be cleared."""


class PoolError(MinimapError):
    """The pool cannot be used, changed or deleted."""


# --- raised by task code -------------------------------------------------------------------------


class TaskFailed(Exception):
    """The task failed; it is retried while it has tries left (any other exception does the same)."""


class FailNow(TaskFailed):
    """The task failed and must not be retried."""


class SkipTask(Exception):
    """The task decided to skip itself; what waits on it follows the trigger rules for skips."""


# Airflow's names, so a DAG file moves over by changing its imports only.
AirflowException = TaskFailed
AirflowFailException = FailNow
AirflowSkipException = SkipTask
