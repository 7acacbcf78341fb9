"""Where in the DAG file a definition is, and task keywords turned into TaskSpec fields."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from minimap.exceptions import DefinitionError
from minimap.rules.tolerance import tolerance
from minimap.rules.triggerrules import TRIGGER_RULES

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def where() -> str:
    """`file:line` of the innermost caller outside minimap: the line of the DAG file being defined."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_PACKAGE_DIR + os.sep) and not frame.f_code.co_filename.startswith("<"):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"


def seconds(value: Any, name: str) -> float | None:
    """A duration given as seconds or a timedelta, as seconds."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    raise DefinitionError(f"{name} must be seconds or a timedelta, got {value!r}")


#: Keywords whose values become fields of the task's TaskSpec.
_SPEC_FIELDS = (
    "retries", "retry_delay", "retry_exponential_backoff", "max_retry_delay", "trigger_rule", "execution_timeout",
    "max_active_tis_per_dag", "max_active_tis_per_dagrun", "map_index_template", "multiple_outputs",
    "pool", "pool_slots", "priority_weight", "weight_rule", "tolerated_failures",
)  # fmt: skip

WEIGHT_RULES = ("downstream", "upstream", "absolute")


def task_settings(given: Mapping[str, Any]) -> dict[str, Any]:
    """The TaskSpec fields that the (already checked) keywords `given` set, validated and in seconds."""
    known = {k: v for k, v in given.items() if k in _SPEC_FIELDS}
    if given.get("task_concurrency") is not None and given.get("max_active_tis_per_dag") is None:
        known["max_active_tis_per_dag"] = given["task_concurrency"]
    for name in ("retry_delay", "max_retry_delay", "execution_timeout"):
        if name in known:
            known[name] = seconds(known[name], name)
    if known.get("retry_delay") is None:
        known.pop("retry_delay", None)
    if known.get("retries") is None:
        known.pop("retries", None)
    rule = str(getattr(known.get("trigger_rule"), "value", known.get("trigger_rule", "all_success")))
    if rule not in TRIGGER_RULES:
        raise DefinitionError(f"unknown trigger_rule {rule!r}; use one of {', '.join(TRIGGER_RULES)}")
    known["trigger_rule"] = rule
    for name in ("retries", "max_active_tis_per_dag", "max_active_tis_per_dagrun"):
        value = known.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise DefinitionError(f"{name} must be a whole number >= 0, got {value!r}")
    template = known.get("map_index_template")
    if template is not None and not isinstance(template, str):
        raise DefinitionError(f"map_index_template must be a string, got {type(template).__name__}")
    known["multiple_outputs"] = bool(known.get("multiple_outputs"))
    _pool_settings(known)
    if known.get("tolerated_failures") is None:
        known.pop("tolerated_failures", None)
    else:
        tolerance(known["tolerated_failures"])  # validated here, at load time
    return known


def _pool_settings(known: dict[str, Any]) -> None:
    """pool, pool_slots, priority_weight and weight_rule as Airflow takes them (None: Airflow's default)."""
    for name in ("pool", "pool_slots", "priority_weight"):
        if known.get(name) is None:
            known.pop(name, None)
    pool = known.get("pool", "default_pool")
    if not isinstance(pool, str) or not pool.strip():
        raise DefinitionError(f"pool must be a pool's name, got {pool!r}")
    slots = known.get("pool_slots", 1)
    if not isinstance(slots, int) or isinstance(slots, bool) or slots < 1:
        raise DefinitionError(f"pool_slots must be a whole number >= 1, got {slots!r}")
    weight = known.get("priority_weight", 1)
    if not isinstance(weight, int) or isinstance(weight, bool):
        raise DefinitionError(f"priority_weight must be a whole number, got {weight!r}")
    rule = str(getattr(known.get("weight_rule"), "value", known.get("weight_rule") or "downstream"))
    if rule not in WEIGHT_RULES:
        raise DefinitionError(f"unknown weight_rule {rule!r}; use one of {', '.join(WEIGHT_RULES)}")
    known["weight_rule"] = rule
