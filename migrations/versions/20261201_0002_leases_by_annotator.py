"""leases by annotator: an index for the claim's "never leased by this annotator" test

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_leases_annotator_item', 'leases', ['annotator_id', 'item_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_leases_annotator_item', table_name='leases')
