"""Every tunable in one place, each overridable by an environment variable."""

from __future__ import annotations

import os

#: One line per environment variable that could not be used; `check()` turns the first into an error.
PROBLEMS: list[str] = []


def _float(name: str, default: float, minimum: float = 0.0) -> float:
    """The variable's value, else `default`; a bad value is recorded (never silently replaced) for `check()`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        PROBLEMS.append(f"{name}={raw!r} is not a number (default: {default:g})")
        return default
    if not value >= minimum:  # also refuses nan
        PROBLEMS.append(f"{name}={raw!r} must be at least {minimum:g} (default: {default:g})")
        return default
    return value


def check() -> None:
    """Raise ConfigError for the first environment variable that could not be used."""
    if PROBLEMS:
        from minimap.exceptions import ConfigError

        raise ConfigError(f"bad environment variable: {PROBLEMS[0]}")


#: Seconds between a worker's heartbeats.
HEARTBEAT_INTERVAL = _float("MINIMAP_HEARTBEAT_INTERVAL", 5.0, minimum=0.01)
#: Seconds without a heartbeat after which a worker's attempts are failed (and retried if they may).
LEASE_TIMEOUT = _float("MINIMAP_LEASE_TIMEOUT", 30.0, minimum=0.1)
#: Seconds between scheduling passes when nothing happened in this process.
POLL_INTERVAL = _float("MINIMAP_POLL_INTERVAL", 0.2, minimum=0.001)
#: Instances that may run at once across all workers (Airflow's `parallelism`).
PARALLELISM = int(_float("MINIMAP_PARALLELISM", 32, minimum=1))
#: Characters of output kept per try (the head and the tail; the middle is cut).
LOG_LIMIT = int(_float("MINIMAP_LOG_LIMIT", 64 * 1024, minimum=256))
#: Items a task may return for others to map over (Airflow's `max_map_length`).
MAX_MAP_LENGTH = int(_float("MINIMAP_MAX_MAP_LENGTH", 1024, minimum=1))
#: Seconds between progress lines when output is not a terminal.
PROGRESS_INTERVAL = _float("MINIMAP_PROGRESS_INTERVAL", 5.0)
#: Seconds to wait for a Postgres connection before giving up (a URL's own connect_timeout wins).
CONNECT_TIMEOUT = _float("MINIMAP_CONNECT_TIMEOUT", 10.0, minimum=1)
#: Seconds one Postgres statement may take (0: no limit; a URL's own `options` win).
STATEMENT_TIMEOUT = _float("MINIMAP_STATEMENT_TIMEOUT", 300.0)
#: Seconds a stopped `minimap run`/`resume`/`clear` or `minimap worker` lets running attempts finish before handing
#: them back (below Docker's 10 s stop timeout, so the hand-back happens before a SIGKILL).
STOP_GRACE = _float("MINIMAP_STOP_GRACE", 8.0)
#: Attempts in a row an instance may lose to a dead worker before it fails (a task that kills its worker each time).
MAX_LOST_ATTEMPTS = int(_float("MINIMAP_MAX_LOST_ATTEMPTS", 3, minimum=1))
#: A run-wide pass (a scheduling pass, a progress count: both read every instance of the run) waits at least this
#: many times its own duration before the next one, unless there is work only it can make ready: so at a million
#: instances, passes take a bounded share of the time instead of most of it.
PASS_SHARE = 10.0
#: Seconds a DAG file may take to load in `minimap scheduler` before it is reported as too slow (Airflow's 30).
DAG_PARSE_TIMEOUT = _float("MINIMAP_DAG_PARSE_TIMEOUT", 30.0, minimum=0.1)
#: Seconds between looks at the DAG files (new, changed, gone) and at which scheduled runs are due.
DAG_SCAN_INTERVAL = _float("MINIMAP_DAG_SCAN_INTERVAL", 1.0, minimum=0.01)
