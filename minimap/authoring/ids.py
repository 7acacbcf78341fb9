"""Airflow's rule for dag, task and group ids, checked at load time so both backends agree."""

from __future__ import annotations

import re

from minimap.exceptions import DefinitionError

ID_MAX_LENGTH = 250  # Airflow's ID_LEN, and the width of the id columns
_ID = re.compile(r"[\w.-]+")  # Airflow's KEY_REGEX: letters, digits, '_', '.', '-'


def check_id(kind: str, value: object, at: str) -> str:
    """`value` if it is a valid `kind` id (dag, task, group), else a DefinitionError naming `at`."""
    if not isinstance(value, str) or not value:
        raise DefinitionError(f"{at}: {kind} needs a {kind}_id (a non-empty string), got {value!r}")
    if len(value) > ID_MAX_LENGTH:
        raise DefinitionError(
            f"{at}: {kind}_id {value[:40]!r}... is {len(value)} characters long; the limit is {ID_MAX_LENGTH}"
        )
    if not _ID.fullmatch(value):
        bad = next(c for c in value if not _ID.fullmatch(c))
        raise DefinitionError(
            f"{at}: {kind}_id {value!r} has the character {bad!r}; use letters, digits, '_', '.' and '-' only"
        )
    return value
