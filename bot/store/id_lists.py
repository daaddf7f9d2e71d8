"""`column IN (ids)` with the whole list bound as one value, for the queries that run on every poll batch.

SQLAlchemy renders a plain `column.in_(ids)` as one bound parameter per id, anew on every execution: for
the poller's batches of 500 units that rendering was two thirds of the CPU of loading the batch (a poll's
rows), and on PostgreSQL each distinct list length is another statement for asyncpg to prepare. Bound as
one value instead (a PostgreSQL array, a JSON text that SQLite's `json_each` unpacks), the statement is
the same for every batch, so SQLAlchemy's compiled cache and asyncpg's prepared statements are reused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import BigInteger, String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement


def one_of(
    session: AsyncSession, column: ColumnElement[int] | InstrumentedAttribute[int], ids: Iterable[int]
) -> ColumnElement[bool]:
    """`column` is one of the integer `ids`, for the database `session` is bound to."""
    values = [int(value) for value in ids]
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(BigInteger)))
    unpacked = func.json_each(bindparam(None, json.dumps(values), type_=String)).table_valued("value")
    return column.in_(select(unpacked.c.value))
