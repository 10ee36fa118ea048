"""tunixrt.v1.DatasetService."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

from google.protobuf import empty_pb2, timestamp_pb2

from tunixrt.v1 import dataset_pb2, dataset_pb2_grpc

from .errors import already_exists, bad_field, failed_precondition, not_found
from .filters import parse_filter
from .names import check_key, parse_dataset_name
from .pagination import decode_token, encode_token, page_size
from .storage.datasets import (
    DatasetExists,
    DatasetSpec,
    DatasetStore,
    EmptySelection,
    StoredDataset,
)
from .storage.runs import RunStore

MAX_LIMIT = 1_000_000
MAX_FULL_VIEW_ITEMS = 20_000
_META_KEY = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
_STRATEGIES = {
    dataset_pb2.SELECTION_STRATEGY_UNSPECIFIED: "LATEST",
    dataset_pb2.SELECTION_STRATEGY_LATEST: "LATEST",
    dataset_pb2.SELECTION_STRATEGY_RANDOM: "RANDOM",
    dataset_pb2.SELECTION_STRATEGY_STRATIFIED: "STRATIFIED",
}
_SPLITS: dict[int, int | None] = {
    dataset_pb2.DATASET_SPLIT_UNSPECIFIED: None,
    dataset_pb2.DATASET_SPLIT_ALL: None,
    dataset_pb2.DATASET_SPLIT_TRAIN: dataset_pb2.DATASET_SPLIT_TRAIN,
    dataset_pb2.DATASET_SPLIT_EVAL: dataset_pb2.DATASET_SPLIT_EVAL,
}


def split_filter(value: int, field: str = "split") -> int | None:
    if value not in _SPLITS:
        raise bad_field(field, f"unknown split {value}")
    return _SPLITS[value]


def _item(trace_id: str, split: int) -> dataset_pb2.DatasetItem:
    return dataset_pb2.DatasetItem(
        trace_id=trace_id, split=dataset_pb2.DatasetSplit.ValueType(split)
    )


def dataset_to_proto(
    ds: StoredDataset, items: list[tuple[int, str, int]] | None = None
) -> dataset_pb2.Dataset:
    spec = ds.spec
    create_time = timestamp_pb2.Timestamp()
    create_time.FromMicroseconds(ds.create_time_us)
    prov = spec.get("provenance", {})
    return dataset_pb2.Dataset(
        name=f"datasets/{ds.key}",
        dataset_key=ds.key,
        dataset_name=spec["dataset_name"],
        version=spec["version"],
        build_id=ds.build_id,
        filter=spec["filter"],
        limit=spec["limit"],
        strategy=dataset_pb2.SelectionStrategy.Value(f"SELECTION_STRATEGY_{spec['strategy']}"),
        seed=spec["seed"],
        stratify_by=spec["stratify_by"],
        eval_fraction=spec["eval_fraction"],
        provenance=dataset_pb2.Provenance(**prov),
        stats=dataset_pb2.DatasetStats(**ds.stats),
        create_time=create_time,
        items=[_item(t, s) for _, t, s in items or ()],
    )


class DatasetService(dataset_pb2_grpc.DatasetServiceServicer):
    def __init__(self, store: DatasetStore, runs: RunStore) -> None:
        self._store = store
        self._runs = runs

    async def resolve(self, name: str, field: str = "name") -> StoredDataset:
        key = parse_dataset_name(name, field)
        found = await asyncio.to_thread(self._store.get, key)
        if found is None:
            raise not_found("dataset", f"datasets/{key}")
        return found

    def _spec(self, request: dataset_pb2.BuildDatasetRequest) -> DatasetSpec:
        name = check_key(request.dataset_name, "dataset_name")
        version = check_key(request.version, "version")
        key = check_key(f"{name}-{version}", "dataset_name")
        if not 0 <= request.limit <= MAX_LIMIT:
            raise bad_field("limit", f"must be 0..{MAX_LIMIT:,} (0 means all, up to {MAX_LIMIT:,})")
        if request.strategy not in _STRATEGIES:
            raise bad_field("strategy", f"unknown strategy {request.strategy}")
        strategy = _STRATEGIES[request.strategy]
        if strategy == "STRATIFIED" and not request.stratify_by:
            raise bad_field("stratify_by", 'is required for STRATIFIED, e.g. "category"')
        stratify_by = request.stratify_by.removeprefix("meta.")
        if request.stratify_by and not _META_KEY.match(stratify_by):
            raise bad_field("stratify_by", "must be a meta key like category or a.b")
        fraction = request.eval_fraction
        if math.isnan(fraction) or not 0 <= fraction < 1:
            raise bad_field("eval_fraction", f"must be in [0, 1), got {fraction}")
        prov = request.provenance
        if prov.parent_dataset_key:
            check_key(prov.parent_dataset_key, "provenance.parent_dataset_key")
        provenance: dict[str, Any] = {
            "session_id": prov.session_id,
            "parent_dataset_key": prov.parent_dataset_key,
            "training_run_id": prov.training_run_id,
            "labels": dict(prov.labels),
        }
        return DatasetSpec(
            key=key,
            dataset_name=name,
            version=version,
            filter=request.filter,
            limit=request.limit or MAX_LIMIT,
            strategy=strategy,
            seed=request.seed,
            stratify_by=stratify_by,
            eval_fraction=fraction,
            provenance=provenance,
        )

    async def BuildDataset(
        self, request: dataset_pb2.BuildDatasetRequest, context: Any
    ) -> dataset_pb2.Dataset:
        spec = self._spec(request)
        conditions = parse_filter(request.filter)
        try:
            built = await asyncio.to_thread(self._store.build, spec, conditions)
        except DatasetExists:
            raise already_exists("dataset", f"datasets/{spec.key}") from None
        except EmptySelection:
            raise failed_precondition(
                f"no traces match filter {request.filter!r};"
                f" nothing to build datasets/{spec.key} from",
                reason="EMPTY_SELECTION",
                subject="filter",
            ) from None
        return dataset_to_proto(built)

    async def GetDataset(
        self, request: dataset_pb2.GetDatasetRequest, context: Any
    ) -> dataset_pb2.Dataset:
        ds = await self.resolve(request.name)
        if request.view != dataset_pb2.DATASET_VIEW_FULL:
            return dataset_to_proto(ds)
        if ds.item_count > MAX_FULL_VIEW_ITEMS:
            raise failed_precondition(
                f"datasets/{ds.key} has {ds.item_count:,} items, more than the FULL view carries "
                f"({MAX_FULL_VIEW_ITEMS:,}); page through ListDatasetItems",
                reason="TOO_MANY_ITEMS",
                subject=f"datasets/{ds.key}",
            )
        items = await asyncio.to_thread(self._store.items, ds.seq, None, -1, MAX_FULL_VIEW_ITEMS)
        return dataset_to_proto(ds, items)

    async def ListDatasets(
        self, request: dataset_pb2.ListDatasetsRequest, context: Any
    ) -> dataset_pb2.ListDatasetsResponse:
        size = page_size(request.page_size)
        cursor = decode_token(request.page_token, "datasets")
        rows = await asyncio.to_thread(self._store.page, size + 1, cursor)
        page = rows[:size]
        token = encode_token(page[-1].seq, "datasets") if len(rows) > size else ""
        return dataset_pb2.ListDatasetsResponse(
            datasets=[dataset_to_proto(d) for d in page], next_page_token=token
        )

    async def ListDatasetItems(
        self, request: dataset_pb2.ListDatasetItemsRequest, context: Any
    ) -> dataset_pb2.ListDatasetItemsResponse:
        ds = await self.resolve(request.parent, "parent")
        split = split_filter(request.split)
        size = page_size(request.page_size, default=1_000, maximum=10_000)
        query = f"{ds.build_id}|{split}"
        cursor = decode_token(request.page_token, query)
        rows = await asyncio.to_thread(
            self._store.items, ds.seq, split, -1 if cursor is None else cursor, size + 1
        )
        page = rows[:size]
        token = encode_token(page[-1][0], query) if len(rows) > size else ""
        return dataset_pb2.ListDatasetItemsResponse(
            items=[_item(t, s) for _, t, s in page],
            next_page_token=token,
        )

    async def DeleteDataset(
        self, request: dataset_pb2.DeleteDatasetRequest, context: Any
    ) -> empty_pb2.Empty:
        key = parse_dataset_name(request.name)
        users = await asyncio.to_thread(self._runs.unfinished_for_dataset, key)
        if users:
            raise failed_precondition(
                f"datasets/{key} is used by unfinished training runs "
                f"{', '.join('trainingRuns/' + u for u in users[:5])}; cancel them first",
                reason="DATASET_IN_USE",
                subject=f"datasets/{key}",
            )
        if not await asyncio.to_thread(self._store.delete, key):
            raise not_found("dataset", f"datasets/{key}")
        return empty_pb2.Empty()
