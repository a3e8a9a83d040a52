"""Developer helper: ``python -m jiaoying.makemigration "message"`` autogenerates a revision
against a scratch SQLite database upgraded to the current heads (merging branches first).

Review the generated file: it must hold only the schema change it is named for.
"""

from __future__ import annotations

import fcntl
import sys
import tempfile
from pathlib import Path

from alembic import command

from config.database import make_engine
from jiaoying.migrate import MIGRATIONS, alembic_config, heads, upgrade


def main() -> None:
    message = sys.argv[1] if len(sys.argv) > 1 else "schema change"
    with open(MIGRATIONS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
            cfg = alembic_config(engine)
            if len(heads()) > 1:
                command.merge(cfg, "heads", message="merge branches")
            upgrade(engine)
            command.revision(cfg, message=message, autogenerate=True)
            engine.dispose()


if __name__ == "__main__":
    main()
