"""Execution: the loops that apply decisions -- scheduler, worker, task processes, the run driver."""
