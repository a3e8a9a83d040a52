"""login failures and send rate slots, shared by every instance on the database

Revision ID: 3c94d5c8ae87
Revises: 5e510c434f0c
Create Date: 2026-12-04 14:36:08.212140
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import config.database

revision = '3c94d5c8ae87'
down_revision = '5e510c434f0c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('at', config.database.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failure'))
    )
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_failure_at'), ['at'], unique=False)
        batch_op.create_index('ix_login_failure_key_at', ['key', 'at'], unique=False)

    op.create_table('send_rate_slot',
    sa.Column('account', sa.String(length=120), nullable=False),
    sa.Column('next_slot_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('account', name=op.f('pk_send_rate_slot'))
    )


def downgrade() -> None:
    op.drop_table('send_rate_slot')
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failure_key_at')
        batch_op.drop_index(batch_op.f('ix_login_failure_at'))

    op.drop_table('login_failure')
