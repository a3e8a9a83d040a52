"""Named counters for human-readable numbers (e.g. 2026-0007 for the seventh run of the year).

The increment is a read-modify-write under a row lock, so concurrent requests on several
instances never hand out the same number.
"""

from __future__ import annotations

from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from config.database import Base


class Counter(Base):
    __tablename__ = "counter"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


def next_value(session: Session, name: str) -> int:
    row = session.execute(select(Counter).where(Counter.name == name).with_for_update()).scalar_one_or_none()
    if row is None:
        # Two instances may both try to create it: the loser's insert fails inside its savepoint only,
        # and it then locks the winner's row like any later caller.
        try:
            with session.begin_nested():
                session.add(Counter(name=name, value=0))
        except IntegrityError:
            pass
        row = session.execute(select(Counter).where(Counter.name == name).with_for_update()).scalar_one()
    row.value += 1
    session.flush()
    return row.value


def current_value(session: Session, name: str) -> int:
    return session.execute(select(Counter.value).where(Counter.name == name)).scalar_one_or_none() or 0
