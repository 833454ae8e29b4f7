"""call_attempts: drop the indexes on seat_id and period_id

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 02:00:00

No query reads call attempts by seat or by period: the call report, the reports and the
recount find them by lead (`ix_call_attempts_lead_id_attempted_at`), by event id or by account.
The two indexes only cost every attempt the dialer sends: in `bench/ingest.py`'s batches the
insert itself (its foreign-key checks aside) took 2.4-2.6 ms per 100 attempts with them and
1.1-1.9 ms without (EXPLAIN ANALYZE). They would serve deleting a seat or a billing period,
which Seatwise never does: seats are deactivated and periods are billing records.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_call_attempts_seat_id', table_name='call_attempts')
    op.drop_index('ix_call_attempts_period_id', table_name='call_attempts')


def downgrade():
    op.create_index('ix_call_attempts_period_id', 'call_attempts', ['period_id'], unique=False)
    op.create_index('ix_call_attempts_seat_id', 'call_attempts', ['seat_id'], unique=False)
