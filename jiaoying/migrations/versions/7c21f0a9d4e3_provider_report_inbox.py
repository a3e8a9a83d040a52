"""provider status callbacks stored as they come and applied in batches

Revision ID: 7c21f0a9d4e3
Revises: 3c94d5c8ae87
Create Date: 2026-12-04 21:50:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import config.database

revision = '7c21f0a9d4e3'
down_revision = '3c94d5c8ae87'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('provider_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=30), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('provider_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('error_code', sa.String(length=30), nullable=True),
    sa.Column('raw', sa.JSON(), nullable=False),
    sa.Column('received_at', config.database.UTCDateTime(), nullable=False),
    sa.Column('failed_at', config.database.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_report'))
    )


def downgrade() -> None:
    op.drop_table('provider_report')
