"""traces table

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "traces",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("create_time_us", sa.BigInteger, nullable=False),
        sa.Column("trace_version", sa.String(16), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("final_answer", sa.Text, nullable=False),
        sa.Column("steps_json", sa.Text, nullable=False),
        sa.Column("meta", JsonType, nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("category", sa.String(256), nullable=False),
        sa.Column("step_count", sa.Integer, nullable=False),
        sa.Column("char_count", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_traces"),
        sa.UniqueConstraint("id", name="uq_traces_id"),
        sa.UniqueConstraint("request_id", name="uq_traces_request_id"),
    )
    op.create_index("ix_traces_create_time_us", "traces", ["create_time_us"])
    op.create_index("ix_traces_source", "traces", ["source"])
    op.create_index("ix_traces_category", "traces", ["category"])
    op.create_index("ix_traces_step_count", "traces", ["step_count"])


def downgrade() -> None:
    op.drop_table("traces")
