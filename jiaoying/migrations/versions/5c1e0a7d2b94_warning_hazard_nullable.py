"""warning.hazard nullable: a Cancel or Update without <info> names no hazard until it is matched

Revision ID: 5c1e0a7d2b94
Revises: 948bf0749158
Create Date: 2026-12-04 05:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '5c1e0a7d2b94'
down_revision = '948bf0749158'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('warning', schema=None) as batch_op:
        batch_op.alter_column('hazard', existing_type=sa.String(length=20), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('warning', schema=None) as batch_op:
        batch_op.alter_column('hazard', existing_type=sa.String(length=20), nullable=False)
