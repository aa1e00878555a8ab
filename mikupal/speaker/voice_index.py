"""Nearest voices among many: an HNSW index (usearch) over unit voice embeddings, by inner product.

The index only finds candidates: linking computes the exact similarity from the float voices
afterwards, so the vectors are stored as 8-bit integers, which finds the same person as often as
32-bit floats do at a third of the cost (and a quarter of the size). usearch over faiss-cpu and
hnswlib (benchmarks/README.md, "Identity at scale"): wheels for every platform with no build step
(hnswlib ships source only), removal of single keys (a redone video's old speakers; faiss's HNSW
has none), one-file save and load, and at 8 bits the cheapest build and search of the three.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

#: graph degree and search breadth (what they find at 100k voices: benchmarks/README.md, "Identity at scale")
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 96
DTYPE = "i8"


class VoiceIndex:
    """Integer keys (>= 0) to unit vectors; `search` returns keys, most similar first."""

    def __init__(self, dim: int, index=None):
        from usearch.index import Index

        self.dim = dim
        self.index = index if index is not None else Index(ndim=dim, metric="ip", dtype=DTYPE, connectivity=CONNECTIVITY,
                                                           expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)

    def __len__(self) -> int:
        return len(self.index)

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if len(keys):
            self.index.add(np.asarray(keys, dtype=np.uint64), np.ascontiguousarray(vectors, dtype=np.float32))

    def remove(self, keys: np.ndarray) -> None:
        if len(keys):
            self.index.remove(np.asarray(keys, dtype=np.uint64))

    def search(self, vectors: np.ndarray, count: int) -> np.ndarray:
        """[n, count] keys of the nearest vectors (-1 past the end when the index holds fewer)."""
        n = len(vectors)
        out = np.full((n, count), -1, dtype=np.int64)
        if n == 0 or len(self) == 0:
            return out
        found = self.index.search(np.ascontiguousarray(vectors, dtype=np.float32).reshape(n, self.dim), count)
        if hasattr(found, "counts"):  # BatchMatches: [n, count] keys, each row valid up to its count
            keys, have = np.asarray(found.keys, dtype=np.int64).reshape(n, -1), np.asarray(found.counts).reshape(n)
        else:  # one query: Matches, its valid keys only
            keys = np.asarray(found.keys, dtype=np.int64).reshape(1, -1)
            have = np.array([keys.shape[1]])
        cols = np.arange(keys.shape[1])
        out[:, : keys.shape[1]] = np.where(cols[None, :] < have[:, None], keys, -1)
        return out

    def save(self, path: Path) -> None:
        self.index.save(str(path))

    @classmethod
    def load(cls, path: Path, dim: int, expected: int) -> Optional["VoiceIndex"]:
        """The saved index, or None when it is missing, unreadable or not the size the registry
        expects (the caller rebuilds it from the voices)."""
        from usearch.index import Index

        if not path.is_file():
            return None
        try:
            index = Index.restore(str(path))
        except Exception:  # noqa: BLE001 - any damage: rebuilt from the registry's voices
            return None
        if index is None or index.ndim != dim or len(index) != expected:
            return None
        index.expansion_search = EXPANSION_SEARCH
        return cls(dim, index)
