"""reports: automatic period reports, render start, email delivery

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:00:00

`automatic` marks the master report the period close makes (at most one per period: a partial
unique index, which both databases support); `started_at` dates the current rendering so a
report stuck in "rendering" by a killed worker can be recognised; `emailed_at` makes the
owners' email go out once. Plain ALTER TABLE: new nullable columns, and a boolean with a
server default so existing rows read as requested by someone.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('reports', sa.Column('automatic', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('reports', sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('reports', sa.Column('emailed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        'uq_reports_automatic_period_id',
        'reports',
        ['period_id'],
        unique=True,
        sqlite_where=sa.text('automatic'),
        postgresql_where=sa.text('automatic'),
    )


def downgrade():
    op.drop_index('uq_reports_automatic_period_id', table_name='reports')
    op.drop_column('reports', 'emailed_at')
    op.drop_column('reports', 'started_at')
    op.drop_column('reports', 'automatic')
