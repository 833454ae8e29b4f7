"""seats can be deactivated

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 09:00:00

A nullable timestamp: existing seats read as NULL, i.e. worked, so no default is needed.
Plain ALTER TABLE on both databases (no batch mode): on SQLite a batch rebuild of `seats`
would drop the trigger that keeps each seat's Primary fixed.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('seats', sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column('seats', 'deactivated_at')
