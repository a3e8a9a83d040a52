"""Every mapped table, imported in one place so metadata (and Alembic) sees the whole schema."""

from config import counters, eventlog, users
from config.database import Base

__all__ = ["Base", "counters", "eventlog", "users"]
