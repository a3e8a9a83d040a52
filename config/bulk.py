"""Many rows in few statements, ids read back in order: for paths that write tens of thousands of rows in
one request (a district-wide run start), where an ORM flush per row costs milliseconds each.

On PostgreSQL the ids are taken from the table's sequence first (one ``nextval`` query for the lot, in
order, as one-by-one inserts would have drawn them) and the rows go in with ``COPY ... FROM STDIN`` in the
same transaction: a multi-row ``VALUES`` list with ``RETURNING`` is much slower there, the driver parsing a
statement with tens of thousands of placeholders in Python, and even a pipelined ``executemany`` costs tens
of microseconds a row. Values are bound as SQLAlchemy would (the column type's ``process_bind_param``, JSON
serialized). SQLite, with nothing to parse, takes multi-row ``INSERT ... RETURNING`` batches, ids sorted back
to the rows' order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Table, TypeDecorator, bindparam, text
from sqlalchemy.orm import Session

BATCH = 1000


def reserve_ids(session: Session, table: Table, n: int) -> list[int]:
    """The next ``n`` ids of ``table``, in order, for rows the caller inserts later in this transaction with
    ``append_rows`` (so rows of other tables can name them first). PostgreSQL draws them from the sequence;
    SQLite gives the next ``max(id) + 1`` ids, which is what it would assign itself, and which nobody else can
    take meanwhile because the caller must already have written in this transaction (SQLite's one writer holds
    its lock until commit)."""
    if n <= 0:
        return []
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        return sorted(int(i) for i in conn.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": n}).scalars())
    if not conn.in_transaction():
        raise RuntimeError("reserve_ids needs the write transaction that will insert the rows")
    top = int(conn.execute(text(f'SELECT COALESCE(MAX(id), 0) FROM "{table.name}"')).scalar() or 0)
    return list(range(top + 1, top + n + 1))


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (every column but the id) in order and return their new ids in the same order. The
    caller's transaction; nothing is flushed here."""
    if not rows:
        return []
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        ids = reserve_ids(session, table, len(rows))
        _copy(session, table, [{**r, "id": i} for r, i in zip(rows, ids, strict=True)])
        return ids
    out: list[int] = []
    stmt = table.insert().returning(table.c.id, sort_by_parameter_order=True)
    for k in range(0, len(rows), BATCH):
        out += [int(r[0]) for r in conn.execute(stmt, list(rows[k:k + BATCH]))]
    return out


def append_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` in order when their ids are not needed (history, log rows)."""
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        _copy(session, table, rows)
        return
    for k in range(0, len(rows), BATCH):
        conn.execute(table.insert(), list(rows[k:k + BATCH]))


def _copy(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL ``COPY`` of ``rows`` (every row with the same keys) on the session's connection."""
    conn = session.connection()
    dialect = conn.dialect
    names = list(rows[0])
    convert: list[Any] = []
    for name in names:
        col_type = table.c[name].type
        if isinstance(col_type, TypeDecorator):
            convert.append(lambda v, t=col_type: t.process_bind_param(v, dialect))
        elif isinstance(col_type, JSON):
            convert.append(lambda v: None if v is None else json.dumps(v))
        else:
            convert.append(None)
    pairs = list(zip(names, convert, strict=True))
    cols = ", ".join(f'"{n}"' for n in names)
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as cp:
        for r in rows:
            cp.write_row(tuple(r[n] if f is None else f(r[n]) for n, f in pairs))


def set_column(session: Session, table: Table, column: str, values: dict[int, Any]) -> None:
    """``UPDATE table SET column = values[id]`` for many ids: one statement with arrays on PostgreSQL,
    an ``executemany`` elsewhere."""
    if not values:
        return
    conn = session.connection()
    ids = list(values)
    if conn.dialect.name == "postgresql":
        col_type = table.c[column].type.compile(dialect=conn.dialect)
        for k in range(0, len(ids), BATCH * 10):
            part = ids[k:k + BATCH * 10]
            conn.execute(text(
                f'UPDATE "{table.name}" AS t SET "{column}" = v.val FROM '
                f"(SELECT unnest(CAST(:ids AS bigint[])) AS id, unnest(CAST(:vals AS {col_type}[])) AS val) AS v "
                "WHERE t.id = v.id"), {"ids": part, "vals": [values[i] for i in part]})
        return
    conn.execute(table.update().where(table.c.id == bindparam("b_id")).values({column: bindparam("b_val")}),
                 [{"b_id": i, "b_val": values[i]} for i in ids])
