"""merge branches

Revision ID: 133a3580e9c6
Revises: 07bf0931df8a, 9a321b553d0b
Create Date: 2026-11-29 10:47:15.220017
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import config.database

revision = '133a3580e9c6'
down_revision = ('07bf0931df8a', '9a321b553d0b')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
