"""generation configs, candidate flags, run tokens and failures

Revision ID: 0004_generation
Revises: 0002_export
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004_generation'
down_revision: str | None = '0002_export'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('generation_configs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('backend', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=300), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('remote', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_generation_configs_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_generation_configs')),
    sa.UniqueConstraint('project_id', 'key', name=op.f('uq_generation_configs_project_id_key'))
    )
    op.create_index(op.f('ix_generation_configs_project_id'), 'generation_configs', ['project_id'], unique=False)
    op.add_column('candidates', sa.Column('flags', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False))
    op.add_column('generation_runs', sa.Column('tokens', sa.BigInteger(), server_default='0', nullable=False))
    op.add_column('generation_runs', sa.Column('failures', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False))


def downgrade() -> None:
    op.drop_column('generation_runs', 'failures')
    op.drop_column('generation_runs', 'tokens')
    op.drop_column('candidates', 'flags')
    op.drop_index(op.f('ix_generation_configs_project_id'), table_name='generation_configs')
    op.drop_table('generation_configs')
