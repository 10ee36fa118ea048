"""tunixrt.v1.DatasetService."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

from google.protobuf import empty_pb2

from tunixrt.v1 import dataset_pb2, dataset_pb2_grpc

from ..core.errors import already_exists, bad_field, failed_precondition, not_found
from ..core.filters import parse_filter
from ..core.names import check_key, parse_dataset_name
from ..core.pagination import paginate
from ..storage.datasets import (
    DatasetExists,
    DatasetSpec,
    DatasetStore,
    EmptySelection,
)
from ..storage.runs import RunStore
from .convert import (
    STRATEGIES,
    dataset_item,
    dataset_to_proto,
    resolve_dataset,
    split_filter,
)

MAX_LIMIT = 10_000_000
MAX_FULL_VIEW_ITEMS = 20_000
_META_KEY = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


class DatasetService(dataset_pb2_grpc.DatasetServiceServicer):
    def __init__(self, store: DatasetStore, runs: RunStore) -> None:
        self._store = store
        self._runs = runs

    def _spec(self, request: dataset_pb2.BuildDatasetRequest) -> DatasetSpec:
        name = check_key(request.dataset_name, "dataset_name")
        version = check_key(request.version, "version")
        key = check_key(f"{name}-{version}", "dataset_name")
        if not 0 <= request.limit <= MAX_LIMIT:
            raise bad_field("limit", f"must be 0..{MAX_LIMIT:,} (0 means all, up to {MAX_LIMIT:,})")
        if request.strategy not in STRATEGIES:
            raise bad_field("strategy", f"unknown strategy {request.strategy}")
        strategy = STRATEGIES[request.strategy]
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
        ds = await resolve_dataset(self._store, request.name)
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
        page, token = await paginate(
            self._store.page,
            lambda ds: ds.seq,
            requested_size=request.page_size,
            page_token=request.page_token,
            query="datasets",
        )
        return dataset_pb2.ListDatasetsResponse(
            datasets=[dataset_to_proto(d) for d in page], next_page_token=token
        )

    async def ListDatasetItems(
        self, request: dataset_pb2.ListDatasetItemsRequest, context: Any
    ) -> dataset_pb2.ListDatasetItemsResponse:
        ds = await resolve_dataset(self._store, request.parent, "parent")
        split = split_filter(request.split)
        page, token = await paginate(
            lambda limit, cursor: self._store.items(
                ds.seq, split, -1 if cursor is None else cursor, limit
            ),
            lambda item: item[0],
            requested_size=request.page_size,
            page_token=request.page_token,
            query=f"{ds.build_id}|{split}",
            default=1_000,
            maximum=10_000,
        )
        return dataset_pb2.ListDatasetItemsResponse(
            items=[dataset_item(t, s) for _, t, s in page],
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
