"""traces' category index covers a dataset's stats

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_traces_category_stats", "traces", ["category", "source", "step_count", "char_count"]
    )
    op.drop_index("ix_traces_category", "traces")


def downgrade() -> None:
    op.create_index("ix_traces_category", "traces", ["category"])
    op.drop_index("ix_traces_category_stats", "traces")
