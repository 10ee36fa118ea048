"""Tables. Migrations in migrations/versions create exactly these."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# JSONB on PostgreSQL so meta filters can use GIN indexes; JSON text elsewhere.
JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

traces = sa.Table(
    "traces",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("create_time_us", sa.BigInteger, nullable=False, index=True),
    sa.Column("trace_version", sa.String(16), nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("final_answer", sa.Text, nullable=False),
    # Steps are only ever read whole, so they stay as the JSON text they came in.
    sa.Column("steps_json", sa.Text, nullable=False),
    sa.Column("meta", JsonType, nullable=False),
    # Extracted from meta at write time so the common filters use indexes.
    sa.Column("source", sa.String(256), nullable=False, index=True),
    sa.Column("category", sa.String(256), nullable=False),
    sa.Column("step_count", sa.Integer, nullable=False, index=True),
    sa.Column("char_count", sa.Integer, nullable=False),
    sa.Column("request_id", sa.String(128), nullable=True, unique=True),
    # Category filters and strata use its prefix; a dataset's stats read the rest
    # from it instead of every trace's row (~1 KB each).
    sa.Index("ix_traces_category_stats", "category", "source", "step_count", "char_count"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(257), nullable=False, unique=True),
    sa.Column("build_id", sa.String(36), nullable=False, unique=True),
    sa.Column("spec", JsonType, nullable=False),  # build inputs and provenance, as given
    sa.Column("stats", JsonType, nullable=False),
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("create_time_us", sa.BigInteger, nullable=False),
)

# The frozen selection. RESTRICT: a trace a dataset uses cannot be deleted,
# so a dataset's content can never change under it.
dataset_items = sa.Table(
    "dataset_items",
    metadata,
    sa.Column(
        "dataset_seq",
        SeqType,
        sa.ForeignKey("datasets.seq", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column(
        "trace_seq",
        SeqType,
        sa.ForeignKey("traces.seq", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("split", sa.SmallInteger, nullable=False),  # DatasetSplit TRAIN=2 / EVAL=3
)

# A run names its dataset by key (no foreign key): a dataset may be deleted once
# no unfinished run uses it; finished runs keep their history.
training_runs = sa.Table(
    "training_runs",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("dataset_key", sa.String(257), nullable=False, index=True),
    sa.Column("spec", JsonType, nullable=False),  # model, hyperparameters, lora
    sa.Column("state", sa.SmallInteger, nullable=False, index=True),  # TrainingRunState
    sa.Column("state_message", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("labels", JsonType, nullable=False),
    sa.Column("create_time_us", sa.BigInteger, nullable=False),
    sa.Column("start_time_us", sa.BigInteger, nullable=True),
    sa.Column("end_time_us", sa.BigInteger, nullable=True),
    sa.Column("metrics", JsonType, nullable=False),  # RunMetrics fields
    sa.Column("checkpoint_step", sa.BigInteger, nullable=False),
    # Kept apart from the rotated checkpoints (runs/{uuid}/best).
    sa.Column("best_checkpoint_step", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("evaluations", JsonType, nullable=False),
    # Each worker start increments it; a worker writes only while it still matches,
    # so a stale worker can never overwrite a newer attempt.
    sa.Column("attempt", sa.Integer, nullable=False),
    # Bumped by the worker at least every second; a RUNNING run whose heartbeat
    # stopped has lost its worker (whichever server it ran under).
    sa.Column("heartbeat_us", sa.BigInteger, nullable=True),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),  # newest event's sequence
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    sa.Column("request_id", sa.String(128), nullable=True, unique=True),
)

training_events = sa.Table(
    "training_events",
    metadata,
    sa.Column(
        "run_seq",
        SeqType,
        sa.ForeignKey("training_runs.seq", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("sequence", sa.BigInteger, primary_key=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("time_us", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # the TrainingEvent oneof field
    sa.Column("payload", JsonType, nullable=False),
)
