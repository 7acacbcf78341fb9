"""The argument checks `.partial()`, `.expand()` and `.expand_kwargs()` share, for a task and a task group.

Each raises a DefinitionError with Airflow's wording, naming the file and line (`at`) and what is mapped
(`kind`: "task send", "task group fulfil").
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from typing import Any

from minimap.authoring.xcomarg import XComArg
from minimap.exceptions import DefinitionError


def check_names(signature: inspect.Signature, names: Mapping[str, Any], what: str, at: str, kind: str) -> None:
    """Every name in `names` is a parameter of the function (unless it takes **kwargs)."""
    params = signature.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(names) - set(params))
    if unknown:
        close = difflib.get_close_matches(unknown[0], params, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DefinitionError(
            f"{at}: {what}() got unknown argument {unknown[0]!r} for {kind}{hint}; "
            f"it takes {', '.join(params) or 'no arguments'}"
        )


def check_partial(constants: Mapping[str, Any], kwargs: Mapping[str, Any], at: str) -> None:
    """A second `.partial()` gives no name twice."""
    twice = sorted(set(kwargs) & set(constants))
    if twice:
        raise DefinitionError(f"{at}: partial() got argument {twice[0]!r} twice")


def check_expand(
    constants: Mapping[str, Any], kwargs: Mapping[str, Any], at: str, kind: str, refused: tuple[type, ...] = ()
) -> None:
    """`.expand(**kwargs)`: at least one argument, none also in partial(), each a list, a dict or an upstream
    output (and not one of the `refused` kinds of XComArg)."""
    if not kwargs:
        raise DefinitionError(f"{at}: expand() of {kind} needs at least one argument to map over")
    both = sorted(set(kwargs) & set(constants))
    if both:
        raise DefinitionError(f"{at}: argument {both[0]!r} of {kind} is given to both partial() and expand()")
    for key, value in kwargs.items():
        if not isinstance(value, (list, tuple, dict, XComArg)) or isinstance(value, refused):
            raise DefinitionError(
                f"{at}: expand() argument {key!r} of {kind} is a {type(value).__name__}; "
                "expand() maps over a list, a dict or an upstream output"
            )


def check_expand_kwargs(
    value: Any, at: str, kind: str, items: tuple[type, ...], refused: tuple[type, ...] = ()
) -> None:
    """`.expand_kwargs(value)`: a list (each item one of `items`) or an upstream output (not a `refused` one)."""
    if not isinstance(value, (list, tuple, XComArg)) or isinstance(value, refused):
        raise DefinitionError(
            f"{at}: expand_kwargs() of {kind} takes a list of dicts or an upstream output, got {type(value).__name__}"
        )
    if isinstance(value, (list, tuple)):
        for item in value:
            if not isinstance(item, items):
                raise DefinitionError(f"{at}: expand_kwargs() of {kind} got a {type(item).__name__}, not a dict")
