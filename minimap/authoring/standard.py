"""Airflow's two everyday operators: `PythonOperator` and `BashOperator`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

from minimap.authoring.context import call_with_context
from minimap.authoring.operators import BaseOperator
from minimap.exceptions import DefinitionError, SkipTask, TaskFailed


class PythonOperator(BaseOperator):
    """Call `python_callable(*op_args, **op_kwargs)`, adding the context keys it asks for, as Airflow."""

    template_fields: Sequence[str] = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: dict[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(python_callable):
            raise DefinitionError(f"{self._at}: python_callable of {self.task_id} must be callable")
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict

    def execute(self, context: dict[str, Any]) -> Any:
        context["templates_dict"] = self.templates_dict
        fn = self.python_callable
        if self.op_args:
            args = list(self.op_args)
            return call_with_context(lambda **kw: fn(*args, **kw), self.op_kwargs, _for(fn, context))
        return call_with_context(fn, self.op_kwargs, context)


def _for(fn: Callable[..., Any], context: dict[str, Any]) -> dict[str, Any]:
    """The context keys `fn` asks for by name (all, for `**context`), for a call that has positional args."""
    import inspect

    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return context
    return {k: v for k, v in context.items() if k in params}


class BashOperator(BaseOperator):
    """Run `bash -c bash_command`; its output goes to the log, its last line is the result; a non-zero exit
    fails the attempt, and `skip_on_exit_code` (99) skips it, as Airflow."""

    template_fields: Sequence[str] = ("bash_command", "env", "cwd")
    template_ext: Sequence[str] = (".sh", ".bash")

    def __init__(
        self,
        *,
        bash_command: str,
        env: dict[str, str] | None = None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_on_exit_code: int | Sequence[int] | None = 99,
        cwd: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.output_encoding = output_encoding
        skip = skip_on_exit_code
        self.skip_on_exit_code = [] if skip is None else [skip] if isinstance(skip, int) else list(skip)
        self.cwd = cwd

    def execute(self, context: dict[str, Any]) -> Any:
        env = None if self.env is None else {**(os.environ if self.append_env else {}), **self.env}
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise TaskFailed(f"cwd {self.cwd!r} of {self.task_id} is not a directory")
        last = ""
        with subprocess.Popen(
            ["bash", "-c", self.bash_command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.cwd,
        ) as proc:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode(self.output_encoding, errors="backslashreplace").rstrip("\n")
                print(line)
                last = line
            code = proc.wait()
        if code in self.skip_on_exit_code:
            raise SkipTask(f"Bash command returned exit code {code}. Skipping.")
        if code != 0:
            raise TaskFailed(f"Bash command failed. The command returned a non-zero exit code {code}.")
        return last


class EmptyOperator(BaseOperator):
    """Does nothing: a place to join or fan out dependencies (Airflow's `EmptyOperator`, once `DummyOperator`)."""

    def execute(self, context: dict[str, Any]) -> None:
        return None
