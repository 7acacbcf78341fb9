"""minimap: a workflow engine that does dynamic task mapping -- fan out, cap, retry exactly one index."""

from __future__ import annotations

from minimap.context import get_current_context
from minimap.dag import DAG
from minimap.taskflow import task
from minimap.xcomarg import XComArg

__all__ = ["DAG", "XComArg", "get_current_context", "task"]
__version__ = "0.1.0"
