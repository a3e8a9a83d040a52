"""department duties (duty.department) and the channel a measure order was acknowledged by

Revision ID: b4e7d2a91c36
Revises: 5c1e0a7d2b94
Create Date: 2026-12-05 09:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'b4e7d2a91c36'
down_revision = '5c1e0a7d2b94'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('duty', schema=None) as batch_op:
        batch_op.add_column(sa.Column('department', sa.String(length=40), nullable=True))
        batch_op.create_index('ix_duty_role_department', ['role', 'department'], unique=False)
    with op.batch_alter_table('measure_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acknowledged_via', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('lift_acknowledged_via', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('measure_order', schema=None) as batch_op:
        batch_op.drop_column('lift_acknowledged_via')
        batch_op.drop_column('acknowledged_via')
    with op.batch_alter_table('duty', schema=None) as batch_op:
        batch_op.drop_index('ix_duty_role_department')
        batch_op.drop_column('department')
