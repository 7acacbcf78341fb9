"""Every tunable in one place, each overridable by an environment variable."""

from __future__ import annotations

import os


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


#: Seconds between a worker's heartbeats.
HEARTBEAT_INTERVAL = _float("MINIMAP_HEARTBEAT_INTERVAL", 5.0)
#: Seconds without a heartbeat after which a worker's attempts are failed (and retried if they may).
LEASE_TIMEOUT = _float("MINIMAP_LEASE_TIMEOUT", 30.0)
#: Seconds between scheduling passes when nothing happened in this process.
POLL_INTERVAL = _float("MINIMAP_POLL_INTERVAL", 0.2)
#: Instances that may run at once across all workers (Airflow's `parallelism`).
PARALLELISM = int(_float("MINIMAP_PARALLELISM", 32))
#: Characters of output kept per try (the head and the tail; the middle is cut).
LOG_LIMIT = int(_float("MINIMAP_LOG_LIMIT", 64 * 1024))
#: Items a task may return for others to map over (Airflow's `max_map_length`).
MAX_MAP_LENGTH = int(_float("MINIMAP_MAX_MAP_LENGTH", 1024))
#: Seconds between progress lines when output is not a terminal.
PROGRESS_INTERVAL = _float("MINIMAP_PROGRESS_INTERVAL", 5.0)
