"""Load a DAG file: import it as a module and collect the DAGs it defines, or say exactly what is wrong."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from typing import Any

from minimap.authoring.dag import DAG, DagContext
from minimap.exceptions import DagFileError, DefinitionError

log = logging.getLogger(__name__)
_cache: dict[tuple[str, float], list[DAG]] = {}
# DAG objects `dag.test()` runs: its task processes (forked from this one) use them rather than
# re-import the file, so a DAG made inside a test function or a notebook runs too.
_pinned: dict[tuple[str, str], DAG] = {}


@contextlib.contextmanager
def pinned(dag: DAG) -> Iterator[None]:
    """While inside, `load_dag` of this DAG's file and id returns `dag` itself."""
    key = (os.path.abspath(dag.fileloc), dag.dag_id)
    _pinned[key] = dag
    try:
        yield
    finally:
        _pinned.pop(key, None)


def _location(path: str, exc: BaseException) -> str:
    """`file:line` of the innermost traceback frame in the DAG file (else the innermost one)."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if os.path.abspath(f.filename) == path]
    chosen = inside or frames
    return f"{chosen[-1].filename}:{chosen[-1].lineno}" if chosen else path


def load_file(path: str, announce: bool = True) -> list[DAG]:
    """Every DAG the file at `path` defines, in definition order (cached while the file is unchanged).

    With `announce`, what the DAGs ask that minimap stores but does not act on yet (a time schedule) is
    logged as one warning line each (task processes load quietly: the CLI already said it)."""
    path = os.path.abspath(path)
    try:
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        raise DagFileError(f"no such DAG file: {path}") from None
    except OSError as e:
        raise DagFileError(f"cannot read DAG file {path}: {e.strerror}") from None
    cached = _cache.get((path, mtime))
    if cached is not None:
        return cached
    name = "minimap_dag_" + hashlib.sha1(path.encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DagFileError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # as Airflow puts the DAGs folder on the path
    collected: list[DAG] = []
    outer = DagContext.collecting
    DagContext.collecting = collected
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(name, None)
        raise DagFileError(f"{e.filename}:{e.lineno}: SyntaxError: {e.msg}") from None
    except DefinitionError as e:
        sys.modules.pop(name, None)
        raise DagFileError(str(e)) from None
    except BaseException as e:  # noqa: B036 -- a DAG file's own error is a user error, not minimap's
        sys.modules.pop(name, None)
        if isinstance(e, KeyboardInterrupt):
            raise
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise DagFileError(f"{_location(path, e)}: {type(e).__name__}: {message}".rstrip(": ")) from None
    finally:
        DagContext.collecting = outer
        DagContext._stack.clear()
    dags: list[Any] = list(collected)
    dags += [v for v in vars(module).values() if isinstance(v, DAG) and v not in dags]
    for dag in dags:
        try:
            dag.check_acyclic()
        except DefinitionError as e:
            raise DagFileError(str(e)) from None
    _cache[(path, mtime)] = dags
    if announce:
        for dag in dags:
            for line in dag.warnings:
                log.warning("%s", line)
    return dags


def pick(dags: list[DAG], dag_id: str | None, path: str) -> DAG:
    """The DAG `dag_id` among `dags`, or the only one."""
    ids = ", ".join(d.dag_id for d in dags)
    if dag_id is not None:
        for dag in dags:
            if dag.dag_id == dag_id:
                return dag
        raise DagFileError(f"no DAG {dag_id!r} in {path}" + (f"; it defines {ids}" if dags else ""))
    if not dags:
        raise DagFileError(f"no DAG in {path}: define one with `with DAG(dag_id=...) as dag:`")
    if len(dags) > 1:
        raise DagFileError(f"{path} defines several DAGs ({ids}): choose one with --dag-id")
    return dags[0]


def load_dag(path: str, dag_id: str | None = None, announce: bool = True) -> DAG:
    """The DAG `dag_id` (or the only DAG) defined in the file at `path`."""
    if dag_id is not None and (os.path.abspath(path), dag_id) in _pinned:
        return _pinned[(os.path.abspath(path), dag_id)]
    return pick(load_file(path, announce), dag_id, os.path.abspath(path))
