"""datasets and their frozen items

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(257), nullable=False),
        sa.Column("build_id", sa.String(36), nullable=False),
        sa.Column("spec", JsonType, nullable=False),
        sa.Column("stats", JsonType, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("create_time_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_datasets"),
        sa.UniqueConstraint("key", name="uq_datasets_key"),
        sa.UniqueConstraint("build_id", name="uq_datasets_build_id"),
    )
    op.create_table(
        "dataset_items",
        sa.Column("dataset_seq", SeqType, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("trace_seq", SeqType, nullable=False),
        sa.Column("split", sa.SmallInteger, nullable=False),
        sa.PrimaryKeyConstraint("dataset_seq", "position", name="pk_dataset_items"),
        sa.ForeignKeyConstraint(
            ["dataset_seq"],
            ["datasets.seq"],
            ondelete="CASCADE",
            name="fk_dataset_items_dataset_seq_datasets",
        ),
        sa.ForeignKeyConstraint(
            ["trace_seq"],
            ["traces.seq"],
            ondelete="RESTRICT",
            name="fk_dataset_items_trace_seq_traces",
        ),
    )
    op.create_index("ix_dataset_items_trace_seq", "dataset_items", ["trace_seq"])


def downgrade() -> None:
    op.drop_table("dataset_items")
    op.drop_table("datasets")
