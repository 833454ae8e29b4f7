"""calls: recent ingestion errors for the operator console

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 15:20:00

A small table of refused call-data items (API items and console import rows), pruned to the
latest few hundred rows by the code that writes it.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'ingestion_errors',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('batch', sa.String(length=200), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.String(length=100), nullable=False),
        sa.Column('api_key_prefix', sa.String(length=16), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ingestion_errors')),
    )


def downgrade():
    op.drop_table('ingestion_errors')
