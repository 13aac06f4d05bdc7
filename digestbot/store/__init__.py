"""The database: papers, sources, ingested files, and each feature's tables.

Each feature keeps its tables and queries in a module of its own here, on the
shared ``schema.metadata``; importing this package registers them all, so
``SqlStore.create_schema`` creates every table.
"""

from digestbot.store import acronyms as acronyms
from digestbot.store import daemon as daemon
from digestbot.store import embeddings as embeddings
from digestbot.store import feedback as feedback
from digestbot.store import feeds as feeds
from digestbot.store import ledger as ledger
from digestbot.store import search as search
from digestbot.store import slack as slack
from digestbot.store import subscribers as subscribers
from digestbot.store.sql import FileRecord, SqlStore, UpsertCounts, merge_papers

__all__ = ["FileRecord", "SqlStore", "UpsertCounts", "merge_papers"]
