"""training runs and their events

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "training_runs",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("dataset_key", sa.String(257), nullable=False),
        sa.Column("spec", JsonType, nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("state_message", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("labels", JsonType, nullable=False),
        sa.Column("create_time_us", sa.BigInteger, nullable=False),
        sa.Column("start_time_us", sa.BigInteger, nullable=True),
        sa.Column("end_time_us", sa.BigInteger, nullable=True),
        sa.Column("metrics", JsonType, nullable=False),
        sa.Column("checkpoint_step", sa.BigInteger, nullable=False),
        sa.Column("evaluations", JsonType, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("heartbeat_us", sa.BigInteger, nullable=True),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_training_runs"),
        sa.UniqueConstraint("id", name="uq_training_runs_id"),
        sa.UniqueConstraint("request_id", name="uq_training_runs_request_id"),
    )
    op.create_index("ix_training_runs_dataset_key", "training_runs", ["dataset_key"])
    op.create_index("ix_training_runs_state", "training_runs", ["state"])
    op.create_table(
        "training_events",
        sa.Column("run_seq", SeqType, nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", JsonType, nullable=False),
        sa.PrimaryKeyConstraint("run_seq", "sequence", name="pk_training_events"),
        sa.ForeignKeyConstraint(
            ["run_seq"],
            ["training_runs.seq"],
            ondelete="CASCADE",
            name="fk_training_events_run_seq_training_runs",
        ),
    )


def downgrade() -> None:
    op.drop_table("training_events")
    op.drop_table("training_runs")
