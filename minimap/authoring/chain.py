"""`chain(a, b, [c, d], e)`: Airflow's helper for long dependency lines."""

from __future__ import annotations

from typing import Any

from minimap.authoring.node import tasks_of
from minimap.exceptions import DefinitionError


def chain(*elements: Any) -> None:
    """Each element waits for the one before it; two lists side by side are paired index by index."""
    for up, down in zip(elements, elements[1:], strict=False):
        if isinstance(up, (list, tuple)) and isinstance(down, (list, tuple)):
            if len(up) != len(down):
                raise DefinitionError(f"chain() pairs lists of the same length, got {len(up)} and {len(down)}")
            for u, d in zip(up, down, strict=True):
                _link(u, d)
        else:
            _link(up, down)


def _link(up: Any, down: Any) -> None:
    for u in tasks_of(up):
        for d in tasks_of(down):
            u.dag.add_edge(u, d)
