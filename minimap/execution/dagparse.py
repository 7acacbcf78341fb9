"""Load one DAG file in a child process of `minimap scheduler` and write what it defines, as JSON, to a file.

`python -m minimap.execution.dagparse DAG_FILE OUT`: OUT receives {"dags": [snapshot, ...]} or {"error": line}.
The scheduler never imports user code itself; a file that hangs, crashes its interpreter or prints is this
process's problem only (what it prints goes to stderr, which the scheduler discards).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from minimap.exceptions import MinimapError


def parse(path: str) -> dict[str, Any]:
    """What the DAG file defines, each DAG checked as a scheduler needs it, or its one-line error."""
    from minimap.authoring.loader import load_file
    from minimap.rules.newrun import initial_instances
    from minimap.rules.timetable import timetable

    path = os.path.abspath(path)
    try:
        dags = load_file(path, announce=False)
        specs = []
        for dag in dags:
            dag.fileloc = path
            spec = dag.spec()
            initial_instances(spec)  # mapped over literals: checked now, not when a run is due
            timetable(spec.schedule, spec.start_date, spec.end_date, spec.timezone)
            specs.append(spec.to_dict())
    except MinimapError as e:
        return {"error": str(e)}
    except Exception as e:  # noqa: BLE001 -- anything a DAG file does wrong is reported, never raised
        return {"error": f"{path}: {type(e).__name__}: {e}"}
    return {"dags": specs}


def main() -> None:
    path, out = sys.argv[1], sys.argv[2]
    sys.stdout = sys.stderr  # the DAG file's prints must not mix with the answer
    result = parse(path)
    tmp = out + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, out)  # whole or absent: a child killed while writing leaves no half answer


if __name__ == "__main__":
    main()
