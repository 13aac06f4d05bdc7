"""The database: papers, sources, ingested files (and the tables later features add)."""

from digestbot.store.sql import FileRecord, SqlStore, UpsertCounts, merge_papers

__all__ = ["FileRecord", "SqlStore", "UpsertCounts", "merge_papers"]
