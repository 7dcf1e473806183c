"""training runs, reward scores on candidates and items, the uncertain-first project option

Revision ID: 0003_training
Revises: 0004_generation
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003_training'
down_revision: str | None = '0004_generation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('training_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('export_format', sa.String(length=32), nullable=False),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('out_dir', sa.String(length=500), nullable=False),
    sa.Column('progress', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('metrics', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('error', sa.String(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_training_runs_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_training_runs_job_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_training_runs_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_runs'))
    )
    op.create_index(op.f('ix_training_runs_project_id'), 'training_runs', ['project_id'], unique=False)
    op.add_column('candidates', sa.Column('reward_score', sa.Float(), nullable=True))
    op.add_column('candidates', sa.Column('reward_model', sa.String(length=300), nullable=True))
    op.add_column('items', sa.Column('reward_gap', sa.Float(), nullable=True))
    op.create_index('ix_items_uncertain', 'items', ['project_id', 'reward_gap', 'id'], unique=False, postgresql_where=sa.text('open_slots > 0'))
    op.add_column('projects', sa.Column('uncertain_first', sa.Boolean(), server_default=sa.text('false'), nullable=False))


def downgrade() -> None:
    op.drop_column('projects', 'uncertain_first')
    op.drop_index('ix_items_uncertain', table_name='items', postgresql_where=sa.text('open_slots > 0'))
    op.drop_column('items', 'reward_gap')
    op.drop_column('candidates', 'reward_model')
    op.drop_column('candidates', 'reward_score')
    op.drop_index(op.f('ix_training_runs_project_id'), table_name='training_runs')
    op.drop_table('training_runs')
