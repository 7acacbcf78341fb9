"""minimap: a workflow engine that does dynamic task mapping -- fan out, cap, retry exactly one index."""

from __future__ import annotations

from minimap.authoring.chain import chain
from minimap.authoring.context import get_current_context
from minimap.authoring.dag import DAG, dag
from minimap.authoring.groupdecorator import task_group
from minimap.authoring.operators import BaseOperator
from minimap.authoring.standard import BashOperator, EmptyOperator, PythonOperator
from minimap.authoring.taskflow import task
from minimap.authoring.taskgroup import TaskGroup
from minimap.authoring.xcomarg import XComArg

__all__ = [
    "DAG",
    "BaseOperator",
    "BashOperator",
    "EmptyOperator",
    "PythonOperator",
    "TaskGroup",
    "XComArg",
    "chain",
    "dag",
    "get_current_context",
    "task",
    "task_group",
]
__version__ = "0.1.0"
