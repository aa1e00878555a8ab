"""Benchmark adapters: MELD, IEMOCAP, and any CSV/Parquet table with id and label columns."""
