"""Inserting many instances at once: Postgres COPY, SQLite executemany on the driver (no SQLAlchemy per row).

The instances of one expansion differ only in their map index and arguments; every other column is one value
for all of them. So each row is made of two values: on Postgres a line of COPY text, joined into chunks of
about 1 MB (psycopg's write_row adapted every value of every row: about half of a million-row expansion's
Python time); on SQLite a tuple whose constant part is built once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from minimap.store.pipelined import driver_errors, naive

_CHUNK = 10_000  # rows per executemany on SQLite, and per COPY write on Postgres
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # as SQLAlchemy's DateTime stores it on SQLite


def insert_instances(conn: Connection, constant: Mapping[str, Any], rows: Iterable[tuple[int, str]]) -> int:
    """Insert task_instance rows in the caller's transaction: `constant` (column -> value, the same for every row;
    times aware or naive UTC) and, per row, (map_index, args)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    names = ", ".join([*constant, "map_index", "args"])
    n = 0
    if conn.dialect.name == "postgresql":
        copy_sql = f"COPY task_instance ({names}) FROM STDIN"
        prefix = "".join(_copy_text(_plain(v, None)) + "\t" for v in constant.values())
        with driver_errors(conn, copy_sql), raw.cursor() as cur, cur.copy(copy_sql) as copy:
            lines: list[str] = []
            for index, args in rows:
                lines.append(f"{prefix}{index}\t{_copy_text(args)}\n")
                if len(lines) >= _CHUNK:
                    copy.write("".join(lines).encode())
                    n, lines = n + len(lines), []
            if lines:
                copy.write("".join(lines).encode())
                n += len(lines)
        return n
    sql = f"INSERT INTO task_instance ({names}) VALUES ({', '.join('?' * (len(constant) + 2))})"
    fixed = tuple(_plain(v, _SQLITE_TIME) for v in constant.values())
    cur = raw.cursor()
    chunk: list[tuple[Any, ...]] = []
    with driver_errors(conn, sql):
        for index, args in rows:
            chunk.append((*fixed, index, args))
            if len(chunk) >= _CHUNK:
                cur.executemany(sql, chunk)
                n, chunk = n + len(chunk), []
        if chunk:
            cur.executemany(sql, chunk)
            n += len(chunk)
    return n


def _plain(value: Any, time_format: str | None) -> Any:
    """A value as the column holds it: times naive UTC (SQLite: text)."""
    if not isinstance(value, datetime):
        return value
    plain = naive(value)
    return plain.strftime(time_format) if time_format and plain is not None else plain


def _copy_text(value: Any) -> str:
    r"""A value in COPY's text format: NULL is \N; backslash, tab, newline and carriage return are escaped."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    text = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text
