"""Any labeled table: a CSV/TSV, JSON Lines or Parquet file, or a folder read as a Parquet dataset
(a run's output folder is read through its `segments/`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import pandas as pd
import pyarrow.parquet as pq

from ... import layout


def resolve_dataset_path(path: str | Path) -> Path:
    """A file as is; a run output folder -> its `segments/`; any other folder as a Parquet dataset."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ValueError(f"not found: {path}")
    if path.is_dir() and (path / layout.SEGMENTS).is_dir():
        return path / layout.SEGMENTS
    return path


def read_any(path: str | Path) -> pd.DataFrame:
    path = resolve_dataset_path(path)
    suffix = "".join(path.suffixes[-2:]).lower() if path.is_file() else ""
    try:
        if path.is_dir() or suffix.endswith((".parquet", ".pq")):
            return pq.read_table(path).to_pandas()
        if suffix.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path, keep_default_na=False, na_values=[""])
        if suffix.endswith((".tsv", ".tsv.gz")):
            return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])
        if suffix.endswith((".jsonl", ".ndjson", ".jsonl.gz")):
            return pd.read_json(path, lines=True)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read table: {e}") from None
    raise ValueError(f"{path}: unknown table format (use .csv, .tsv, .jsonl, .parquet or a Parquet folder)")


def require_columns(df: pd.DataFrame, columns: Sequence[str], source: str | Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing columns {missing} (has: {list(df.columns)})")


def read_table(
    path: str | Path, id_columns: Sequence[str], label_column: Optional[str] = None
) -> pd.DataFrame:
    """Read a table and check that the id columns (and the label column, if named) are present."""
    df = read_any(path)
    require_columns(df, [*id_columns, *([label_column] if label_column else [])], path)
    return df
