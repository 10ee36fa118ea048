"""The typed Python SDK: one object per server, plain methods per RPC."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from . import retry
from .convert import dataset_split
from .errors import TunixRtError, from_rpc_error
from .export_calls import ExportCalls
from .trace_calls import TraceCalls
from .training_calls import TrainingCalls
from .v1 import (
    dataset_pb2,
    dataset_pb2_grpc,
    export_pb2_grpc,
    server_pb2,
    server_pb2_grpc,
    trace_pb2_grpc,
    training_pb2_grpc,
)

T = TypeVar("T")


DEFAULT_ADDRESS = "127.0.0.1:50051"
# Room for a full-size trace (1,000 steps x 20,000 chars) in either direction.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def channel_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    ]


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def credentials(tls: bool, root_certificates: bytes | None) -> grpc.ChannelCredentials | None:
    """TLS credentials when asked for (or when a CA is given); None for plaintext."""
    if tls or root_certificates:
        return grpc.ssl_channel_credentials(root_certificates=root_certificates)
    return None


class Client(TraceCalls, ExportCalls, TrainingCalls):
    """A connection to a tunix-rt server.

    >>> with Client("127.0.0.1:50051") as rt:
    ...     rt.import_jsonl("traces.jsonl")
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        token: str | None = None,
        root_certificates: bytes | None = None,
        tls: bool = False,
        timeout: float = 60.0,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._metadata = auth_metadata(token)
        creds = credentials(tls, root_certificates)
        if creds:
            self.channel = grpc.secure_channel(address, creds, options=channel_options())
        else:
            self.channel = grpc.insecure_channel(address, options=channel_options())
        self.traces = trace_pb2_grpc.TraceServiceStub(self.channel)
        self.datasets = dataset_pb2_grpc.DatasetServiceStub(self.channel)
        self.exports = export_pb2_grpc.ExportServiceStub(self.channel)
        self.training = training_pb2_grpc.TrainingServiceStub(self.channel)
        self.server = server_pb2_grpc.ServerServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        try:
            return retry.call(
                lambda left: method(request, timeout=left, metadata=self._metadata),
                request,
                timeout or self.timeout,
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def _pages(self, fetch: Callable[[str], tuple[list[T], str]]) -> Iterator[T]:
        token = ""
        while True:
            items, token = fetch(token)
            yield from items
            if not token:
                return

    # -- datasets -----------------------------------------------------------

    def build_dataset(
        self,
        dataset_name: str,
        version: str,
        *,
        filter: str = "",
        limit: int = 0,
        strategy: str = "LATEST",
        seed: int = 0,
        stratify_by: str = "",
        eval_fraction: float = 0.0,
        provenance: dataset_pb2.Provenance | None = None,
    ) -> dataset_pb2.Dataset:
        request = dataset_pb2.BuildDatasetRequest(
            dataset_name=dataset_name,
            version=version,
            filter=filter,
            limit=limit,
            strategy=dataset_pb2.SelectionStrategy.Value(f"SELECTION_STRATEGY_{strategy.upper()}"),
            seed=seed,
            stratify_by=stratify_by,
            eval_fraction=eval_fraction,
            provenance=provenance,
        )
        return self._call(self.datasets.BuildDataset, request, timeout=max(self.timeout, 600.0))

    def get_dataset(self, name: str, *, full: bool = False) -> dataset_pb2.Dataset:
        view = dataset_pb2.DATASET_VIEW_FULL if full else dataset_pb2.DATASET_VIEW_BASIC
        return self._call(
            self.datasets.GetDataset, dataset_pb2.GetDatasetRequest(name=name, view=view)
        )

    def list_datasets(self, *, page_size: int = 0) -> Iterator[dataset_pb2.Dataset]:
        def fetch(token: str) -> tuple[list[dataset_pb2.Dataset], str]:
            page = self._call(
                self.datasets.ListDatasets,
                dataset_pb2.ListDatasetsRequest(page_size=page_size, page_token=token),
            )
            return list(page.datasets), page.next_page_token

        return self._pages(fetch)

    def list_dataset_items(
        self, name: str, *, split: str = "ALL", page_size: int = 0
    ) -> Iterator[dataset_pb2.DatasetItem]:
        def fetch(token: str) -> tuple[list[dataset_pb2.DatasetItem], str]:
            page = self._call(
                self.datasets.ListDatasetItems,
                dataset_pb2.ListDatasetItemsRequest(
                    parent=name, split=dataset_split(split), page_size=page_size, page_token=token
                ),
            )
            return list(page.items), page.next_page_token

        return self._pages(fetch)

    def delete_dataset(self, name: str) -> None:
        self._call(self.datasets.DeleteDataset, dataset_pb2.DeleteDatasetRequest(name=name))

    # -- the server -----------------------------------------------------------

    def get_server_info(self) -> server_pb2.ServerInfo:
        """Versions, the devices a training worker uses, presets, limits, auth."""
        return self._call(self.server.GetServerInfo, server_pb2.GetServerInfoRequest())


__all__ = ["Client", "TunixRtError"]
