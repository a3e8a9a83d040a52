"""Developer helper: ``python -m jiaoying.makemigration "message"`` autogenerates a revision
against a scratch SQLite database upgraded to head."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from config.database import make_engine
from jiaoying.migrate import alembic_config, upgrade


def main() -> None:
    message = sys.argv[1] if len(sys.argv) > 1 else "schema change"
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        upgrade(engine)
        command.revision(alembic_config(engine), message=message, autogenerate=True)
        engine.dispose()


if __name__ == "__main__":
    main()
