"""Jinja2 templates in operator arguments, rendered as Airflow does (sandboxed, StrictUndefined by default)."""

from __future__ import annotations

from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment


def environment(dag: Any) -> SandboxedEnvironment:
    """The DAG's template environment: Airflow's defaults plus its user_defined_macros and filters."""
    env = SandboxedEnvironment(
        undefined=getattr(dag, "template_undefined", None) or jinja2.StrictUndefined,
        keep_trailing_newline=True,
        cache_size=0,
    )
    env.globals.update(getattr(dag, "user_defined_macros", None) or {})
    env.filters.update(getattr(dag, "user_defined_filters", None) or {})
    return env


def render(value: Any, context: dict[str, Any], env: SandboxedEnvironment) -> Any:
    """`value` with every string inside it rendered against `context` (lists, tuples, dicts, recursively)."""
    if isinstance(value, str):
        return env.from_string(value).render(**context) if "{" in value else value
    if isinstance(value, tuple):
        return tuple(render(v, context, env) for v in value)
    if isinstance(value, list):
        return [render(v, context, env) for v in value]
    if isinstance(value, dict):
        return {k: render(v, context, env) for k, v in value.items()}
    return value
