"""Users, roles and departments: who may do what.

Departments are data (seeded from ``config/defaults/departments.toml``) because each district has
its own list; a department analyst is bound to exactly one.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import tomllib
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from config.database import Base

DEFAULTS = Path(__file__).parent / "defaults"


class Role(enum.StrEnum):
    ADMIN = "admin"
    LEADER = "leader"  # 带班领导
    DUTY_OFFICER = "duty_officer"  # 值班员
    ANALYST = "analyst"  # 部门研判人员
    VIEWER = "viewer"


ROLE_NAMES_ZH = {
    Role.ADMIN: "管理员",
    Role.LEADER: "带班领导",
    Role.DUTY_OFFICER: "值班员",
    Role.ANALYST: "部门研判人员",
    Role.VIEWER: "只读用户",
}


class Department(Base):
    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    name_en: Mapped[str] = mapped_column(String(120), default="")


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(80), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime]

    department: Mapped[Department | None] = relationship(lazy="joined")


_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    """A hash of nothing, verified against when the user does not exist, so timing does not reveal usernames.

    Made on first use, not at import: every command (a drill, a migration) imports this module, and one
    argon2 hash costs a noticeable fraction of a second.
    """
    return _hasher.hash("jiaoying-no-such-user")


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        verify_password(_dummy_hash(), password)
        return None
    if not user.active or not verify_password(user.password_hash, password):
        return None
    return user


def default_departments() -> list[dict[str, str]]:
    with open(DEFAULTS / "departments.toml", "rb") as fh:
        return list(tomllib.load(fh)["department"])


def seed_departments(session: Session) -> int:
    """Insert the default departments that are missing; idempotent."""
    have = set(session.execute(select(Department.code)).scalars())
    added = 0
    for d in default_departments():
        if d["code"] not in have:
            session.add(Department(code=d["code"], name=d["name"], name_en=d.get("name_en", "")))
            added += 1
    session.flush()
    return added


def find_department(session: Session, key: str) -> Department | None:
    return session.execute(
        select(Department).where((Department.code == key) | (Department.name == key))
    ).scalar_one_or_none()
