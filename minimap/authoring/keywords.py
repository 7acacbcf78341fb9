"""Airflow's keyword arguments, each either honoured by minimap or refused with one line.

Every keyword of Airflow 2.10's `BaseOperator`, `@task`, `DAG` and `@dag` is listed here with what minimap
does with it. A keyword not listed is a typo or from another product: refused, with the nearest known
name. A keyword minimap does not act on is accepted only where it has no effect here (documentation,
ownership, UI placement) or at Airflow's default value; any other value is refused, so a DAG never seems
to work while doing something else. See docs/moving-from-airflow.md.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from minimap.exceptions import DefinitionError

HONOURED = "honoured"  # minimap acts on it
NO_EFFECT = "no effect"  # documentation, ownership, UI: accepted with any value
AT_DEFAULT = "default only"  # accepted at Airflow's default value, refused otherwise
NOT_YET = "not supported yet"  # refused: planned
REFUSED = "not supported"  # refused: not planned


@dataclass(frozen=True)
class Keyword:
    """What minimap does with one Airflow keyword."""

    kind: str
    instead: str = ""  # what to use instead, for a refused value
    defaults: tuple[Any, ...] = (None,)  # accepted values of an AT_DEFAULT keyword


def _k(kind: str, instead: str = "", *defaults: Any) -> Keyword:
    return Keyword(kind, instead, defaults or (None,))


_NO_CALLBACKS = "minimap runs no callbacks; check the outcome with `minimap runs`/`minimap tasks` or the exit code"
_NO_EMAIL = "minimap sends no email; check the outcome with `minimap runs` or the exit code of `minimap run`"
_NO_PAST = "minimap runs do not depend on earlier runs"

#: Keywords of a task: BaseOperator's, plus @task's and PythonOperator's own.
TASK_KEYWORDS: dict[str, Keyword] = {
    "task_id": _k(HONOURED),
    "dag": _k(HONOURED),
    "default_args": _k(HONOURED),
    "params": _k(HONOURED),
    "retries": _k(HONOURED),
    "retry_delay": _k(HONOURED),
    "retry_exponential_backoff": _k(HONOURED),
    "max_retry_delay": _k(HONOURED),
    "trigger_rule": _k(HONOURED),
    "execution_timeout": _k(HONOURED),
    "max_active_tis_per_dag": _k(HONOURED),
    "task_concurrency": _k(HONOURED),  # Airflow's old name of max_active_tis_per_dag
    "max_active_tis_per_dagrun": _k(HONOURED),
    "map_index_template": _k(HONOURED),
    "multiple_outputs": _k(HONOURED),
    "do_xcom_push": _k(HONOURED),
    "op_args": _k(HONOURED),
    "op_kwargs": _k(HONOURED),
    "templates_dict": _k(HONOURED),
    "owner": _k(NO_EFFECT),
    "doc": _k(NO_EFFECT),
    "doc_md": _k(NO_EFFECT),
    "doc_json": _k(NO_EFFECT),
    "doc_yaml": _k(NO_EFFECT),
    "doc_rst": _k(NO_EFFECT),
    "task_display_name": _k(NO_EFFECT),
    "logger_name": _k(NO_EFFECT),
    "show_return_value_in_logs": _k(NO_EFFECT),
    "allow_nested_operators": _k(NO_EFFECT),
    "start_date": _k(NO_EFFECT),  # bounds scheduled runs only; a task runs in every run here
    "end_date": _k(NO_EFFECT),
    "email": _k(AT_DEFAULT, _NO_EMAIL),  # accepted when email_on_failure and email_on_retry are False
    "email_on_failure": _k(AT_DEFAULT, _NO_EMAIL, False),
    "email_on_retry": _k(AT_DEFAULT, _NO_EMAIL, False),
    "depends_on_past": _k(AT_DEFAULT, _NO_PAST, False),
    "ignore_first_depends_on_past": _k(AT_DEFAULT, _NO_PAST, True, False),
    "wait_for_past_depends_before_skipping": _k(AT_DEFAULT, _NO_PAST, False),
    "wait_for_downstream": _k(AT_DEFAULT, _NO_PAST, False),
    "pool": _k(HONOURED),  # a pool made with `minimap pools set NAME SLOTS`
    "pool_slots": _k(HONOURED),
    "priority_weight": _k(HONOURED),
    "weight_rule": _k(HONOURED),
    "tolerated_failures": _k(HONOURED),  # minimap's own: failed instances a mapped task may have and succeed
    "queue": _k(AT_DEFAULT, "every worker runs every task", None, "default"),
    "sla": _k(AT_DEFAULT, "use execution_timeout to bound a task's time"),
    "on_execute_callback": _k(AT_DEFAULT, _NO_CALLBACKS),
    "on_failure_callback": _k(AT_DEFAULT, _NO_CALLBACKS),
    "on_success_callback": _k(AT_DEFAULT, _NO_CALLBACKS),
    "on_retry_callback": _k(AT_DEFAULT, _NO_CALLBACKS),
    "on_skipped_callback": _k(AT_DEFAULT, _NO_CALLBACKS),
    "pre_execute": _k(AT_DEFAULT, "do it at the start of the task's function or execute()"),
    "post_execute": _k(AT_DEFAULT, "do it at the end of the task's function or execute()"),
    "resources": _k(AT_DEFAULT, "every task instance runs in its own process on the worker that claims it"),
    "run_as_user": _k(AT_DEFAULT, "tasks run as the user of the worker"),
    "executor": _k(AT_DEFAULT, "every task runs in a minimap task process"),
    "executor_config": _k(AT_DEFAULT, "every task runs in a minimap task process"),
    "inlets": _k(AT_DEFAULT, "minimap has no datasets or lineage", None, ()),
    "outlets": _k(AT_DEFAULT, "minimap has no datasets or lineage", None, ()),
    "task_group": _k(NOT_YET, "define the task outside the group"),
    "templates_exts": _k(AT_DEFAULT, "pass the template's text rather than a file name"),
}

#: Keywords of `DAG(...)` and `@dag(...)`.
DAG_KEYWORDS: dict[str, Keyword] = {
    "dag_id": _k(HONOURED),
    "default_args": _k(HONOURED),
    "params": _k(HONOURED),
    "max_active_tasks": _k(HONOURED),
    "concurrency": _k(HONOURED),  # Airflow's old name of max_active_tasks
    "max_active_runs": _k(HONOURED),
    "max_map_length": _k(HONOURED),  # minimap's own
    "user_defined_macros": _k(HONOURED),
    "user_defined_filters": _k(HONOURED),
    "template_undefined": _k(HONOURED),
    # acted on by `minimap scheduler` (minimap/rules/timetable.py); stored with each run
    "schedule": _k(HONOURED),
    "schedule_interval": _k(HONOURED),
    "timetable": _k(HONOURED),
    "start_date": _k(HONOURED),
    "end_date": _k(HONOURED),
    "catchup": _k(HONOURED),
    "dagrun_timeout": _k(HONOURED),
    "tags": _k(NO_EFFECT),
    "description": _k(NO_EFFECT),
    "doc_md": _k(NO_EFFECT),
    "owner_links": _k(NO_EFFECT),
    "dag_display_name": _k(NO_EFFECT),
    "default_view": _k(NO_EFFECT),
    "orientation": _k(NO_EFFECT),
    "access_control": _k(NO_EFFECT),
    "is_paused_upon_creation": _k(HONOURED),
    "auto_register": _k(NO_EFFECT),
    "on_success_callback": _k(AT_DEFAULT, _NO_CALLBACKS),
    "on_failure_callback": _k(AT_DEFAULT, _NO_CALLBACKS),
    "sla_miss_callback": _k(AT_DEFAULT, _NO_CALLBACKS),
    "template_searchpath": _k(AT_DEFAULT, "pass the template's text rather than a file name"),
    "jinja_environment_kwargs": _k(AT_DEFAULT, "templates render in Jinja's sandbox with Airflow's defaults"),
    "render_template_as_native_obj": _k(NOT_YET, "templates render to strings", None, False),
    "max_consecutive_failed_dag_runs": _k(AT_DEFAULT, "minimap does not pause DAGs", None, 0),
    "fail_stop": _k(NOT_YET, "failed instances block only what waits on them", None, False),
    "fail_fast": _k(NOT_YET, "failed instances block only what waits on them", None, False),  # Airflow 3's name
    "deadline": _k(AT_DEFAULT, _NO_CALLBACKS),
}


def _is_default(name: str, spec: Keyword, value: Any, given: Mapping[str, Any]) -> bool:
    if name == "email":
        no_mail = given.get("email_on_failure") is False and given.get("email_on_retry") is False
        return not value or no_mail
    return any(value is d or (type(value) is type(d) and value == d) for d in spec.defaults)


def check(given: Mapping[str, Any], table: Mapping[str, Keyword], what: str, at: str) -> None:
    """Raise, naming `at` (file:line), the first keyword of `given` that `table` does not accept."""
    for name in given:
        spec = table.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, table, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DefinitionError(f"{at}: unknown argument {name!r} to {what}{hint}")
        value = given[name]
        if spec.kind in (HONOURED, NO_EFFECT) or _is_default(name, spec, value, given):
            continue
        kind = NOT_YET if spec.kind == NOT_YET else REFUSED
        raise DefinitionError(f"{at}: {name} is {kind} ({what} got {name}={value!r}): {spec.instead}")


def check_task(given: Mapping[str, Any], what: str, at: str) -> None:
    """Refuse what a task's keywords (with default_args applied) ask that minimap does not do."""
    check(given, TASK_KEYWORDS, what, at)


def check_default_args(given: Mapping[str, Any], at: str) -> None:
    """default_args may hold any task keyword (Airflow passes each to the operators that take it)."""
    check({k: v for k, v in given.items() if k != "task_id"}, TASK_KEYWORDS, "default_args", at)
    if "task_id" in given:
        raise DefinitionError(f"{at}: task_id in default_args would give every task the same id; name each task")
