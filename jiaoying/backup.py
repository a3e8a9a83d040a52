"""An online backup of a SQLite database: a consistent copy taken while the server keeps writing.

SQLite's backup API copies the database page by page. The source connection holds one read transaction
for the whole copy, so on a WAL database (as ``config/database.py`` opens them) every page comes from the
same snapshot: writers go on meanwhile, the copy never restarts and never mixes two moments. The copy is
written next to the target under a temporary name, checked (``PRAGMA integrity_check``) and only then
renamed into place, so a failed backup leaves no half file where the last good one was.

PostgreSQL has its own tools for this (``pg_dump`` / ``pg_restore``, see the README's deployment section).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

PAGES_PER_STEP = 1024


class BackupError(Exception):
    """The backup cannot be made; the message says why and what to do (zh / en). ``bad_argument``: the fault is
    in what was asked (a folder that does not exist, the database itself as the target), not in the copying."""

    def __init__(self, message: str, *, bad_argument: bool = False) -> None:
        super().__init__(message)
        self.bad_argument = bad_argument


@dataclass(frozen=True)
class BackupResult:
    path: Path
    pages: int
    bytes: int


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for another database. An in-memory database cannot be backed up."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("内存数据库无法备份 / an in-memory database cannot be backed up", bad_argument=True)
    return Path(parsed.database)


def backup_sqlite(source: Path, out: Path, *, progress: Callable[[int, int], None] | None = None,
                  pages_per_step: int | None = None) -> BackupResult:
    """Copy ``source`` to ``out`` while others may write to it. ``progress(done, total)`` after each step."""
    if not source.is_file():
        raise BackupError(f"找不到数据库文件 {source} / no database file at {source}", bad_argument=True)
    out = out.expanduser()
    if out.resolve() == source.resolve():
        raise BackupError("备份文件不能是数据库本身 / the backup cannot overwrite the database itself",
                          bad_argument=True)
    if out.is_dir():
        raise BackupError(f"{out} 是目录，请给出文件名 / {out} is a folder: give a file name", bad_argument=True)
    if not out.parent.is_dir():
        raise BackupError(f"目录不存在 / no such folder: {out.parent}", bad_argument=True)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30, isolation_level=None)
    try:
        src.execute("BEGIN")  # one snapshot for the whole copy (see the module docstring)
        src.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        dst = sqlite3.connect(partial, isolation_level=None)
        try:
            def step(_status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(total - remaining, total)

            src.backup(dst, pages=pages_per_step or PAGES_PER_STEP, progress=step)
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"备份文件校验失败 / the copy failed its integrity check: {check}")
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            dst.close()
        src.execute("COMMIT")
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"备份失败 / backup failed: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    os.replace(partial, out)
    return BackupResult(out, pages, out.stat().st_size)
