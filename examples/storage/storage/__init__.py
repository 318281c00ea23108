"""A small journaling key-value store on a block layer, on real files: failpath's example."""

from storage.errors import StoreError, StoreFull, StoreIOError, StoreShutdown
from storage.store import Store

__all__ = ["Store", "StoreError", "StoreFull", "StoreIOError", "StoreShutdown"]
