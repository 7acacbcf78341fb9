"""Authoring: the DAG file's API (DAG, @task, XComArg, context) and loading DAG files."""
