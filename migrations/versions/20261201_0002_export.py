"""direct edits: a candidate's author and the candidate it rewrites

Revision ID: 0002_export
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002_export'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('candidates', sa.Column('author_id', sa.Integer(), nullable=True))
    op.add_column('candidates', sa.Column('parent_id', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_candidates_parent_id'), 'candidates', ['parent_id'], unique=False)
    op.create_foreign_key(op.f('fk_candidates_author_id_users'), 'candidates', 'users', ['author_id'], ['id'],
                          ondelete='SET NULL')
    op.create_foreign_key(op.f('fk_candidates_parent_id_candidates'), 'candidates', 'candidates',
                          ['parent_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    op.drop_constraint(op.f('fk_candidates_parent_id_candidates'), 'candidates', type_='foreignkey')
    op.drop_constraint(op.f('fk_candidates_author_id_users'), 'candidates', type_='foreignkey')
    op.drop_index(op.f('ix_candidates_parent_id'), table_name='candidates')
    op.drop_column('candidates', 'parent_id')
    op.drop_column('candidates', 'author_id')
