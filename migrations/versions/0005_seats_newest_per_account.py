"""seats: an index on (account_id, id) for an account's newest seat

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 19:20:00

The dashboard's version reads an account's highest seat id on every poll; with this index
that is one index probe rather than a scan of the account's seats.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_seats_account_id_id', 'seats', ['account_id', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_seats_account_id_id', table_name='seats')
