"""The service layer the CLI, the library and the web page share: what users read and what they do."""

from __future__ import annotations

from minimap.service.reads import (
    CursorError,
    get_run,
    instance_detail,
    instances,
    latest_run,
    latest_try,
    list_instances,
    list_runs,
    list_workers,
    resolve_run,
    run_detail,
    tries,
    try_log,
)
from minimap.service.records import (
    InstanceDetail,
    LogChunk,
    Page,
    RunDetail,
    RunSummary,
    TaskSummary,
    WorkerInfo,
    instance_json,
    run_json,
    task_json,
    try_json,
)

__all__ = [
    "CursorError",
    "InstanceDetail",
    "LogChunk",
    "Page",
    "RunDetail",
    "RunSummary",
    "TaskSummary",
    "WorkerInfo",
    "get_run",
    "instance_detail",
    "instance_json",
    "instances",
    "latest_run",
    "latest_try",
    "list_instances",
    "list_runs",
    "list_workers",
    "resolve_run",
    "run_detail",
    "run_json",
    "task_json",
    "tries",
    "try_json",
    "try_log",
]
