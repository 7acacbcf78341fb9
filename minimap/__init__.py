"""minimap: a workflow engine that does dynamic task mapping -- fan out, cap, retry exactly one index."""

from __future__ import annotations

from minimap.authoring.context import get_current_context
from minimap.authoring.dag import DAG
from minimap.authoring.taskflow import task
from minimap.authoring.xcomarg import XComArg

__all__ = ["DAG", "XComArg", "get_current_context", "task"]
__version__ = "0.1.0"
