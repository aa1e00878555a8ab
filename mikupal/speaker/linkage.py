"""Average linkage that never joins two things known to be two people.

Scikit-learn's and SciPy's agglomerative clustering take no constraints: the usual trick (a large
distance for a pair that must stay apart) does not hold under average linkage, where one distant
pair is outweighed by many close ones and the two clusters merge anyway. Here the constraint is
part of the merge rule: two clusters that hold a cannot-link pair between them are never merged,
whatever their average similarity. Must-links are given as starting groups.

The cost is O(n^2) memory and O(n^2) per merge: n is a video's segments (hundreds at most).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def average_linkage(sim: np.ndarray, cannot: np.ndarray, threshold: float, groups: Optional[Sequence[int]] = None) -> list[int]:
    """A cluster label per point (0..k-1, in order of each cluster's first point).

    `sim`: [n, n] pairwise similarity; `cannot`: [n, n] bool, True where two points are two people;
    `groups`: a starting cluster per point (must-links), which must hold no cannot-link pair.
    Clusters are merged, most similar first, while their average pairwise similarity is at least
    `threshold` and no cannot-link pair lies between them. Ties go to the lowest cluster numbers,
    so the same input gives the same clusters."""
    n = len(sim)
    if n == 0:
        return []
    start = list(range(n)) if groups is None else [int(g) for g in groups]
    index: dict[int, int] = {}
    for g in start:
        index.setdefault(g, len(index))
    names = list(index)
    member = np.zeros((len(names), n), dtype=np.float64)  # [clusters, points] one-hot
    for i, g in enumerate(start):
        member[index[g], i] = 1.0
    sums = member @ np.asarray(sim, dtype=np.float64) @ member.T  # summed similarity between clusters
    blocked = (member @ np.asarray(cannot, dtype=np.float64) @ member.T) > 0
    if np.any(np.diag(blocked)):
        raise ValueError("a starting group holds a cannot-link pair")
    sizes = member.sum(axis=1)
    alive = np.ones(len(names), dtype=bool)
    avg = sums / np.outer(sizes, sizes)
    avg[blocked] = -np.inf
    np.fill_diagonal(avg, -np.inf)
    while True:
        a, b = divmod(int(np.argmax(avg)), len(names))  # the first of the most similar pairs
        if not avg[a, b] >= threshold:
            break
        a, b = min(a, b), max(a, b)
        sums[a, :] += sums[b, :]
        sums[:, a] = sums[a, :]
        blocked[a, :] |= blocked[b, :]
        blocked[:, a] = blocked[a, :]
        sizes[a] += sizes[b]
        member[a] += member[b]
        alive[b] = False
        row = sums[a] / (sizes[a] * sizes)
        row[blocked[a] | ~alive] = -np.inf
        row[a] = -np.inf
        avg[a, :], avg[:, a] = row, row
        avg[b, :], avg[:, b] = -np.inf, -np.inf
    label_of = np.argmax(member[alive], axis=0)  # the surviving cluster of each point
    renumber: dict[int, int] = {}
    return [renumber.setdefault(int(x), len(renumber)) for x in label_of]


def resolve_must_links(n: int, must: Sequence[tuple[int, int]], cannot: np.ndarray) -> list[int]:
    """Starting groups from must-link pairs (taken in the order given: put the surest first), each
    skipped when it would put a cannot-link pair into one group: a cannot-link always wins."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    for i, j in must:
        a, b = root(i), root(j)
        if a == b or cannot[np.ix_(members[a], members[b])].any():
            continue
        a, b = min(a, b), max(a, b)
        parent[b] = a
        members[a] += members.pop(b)
    return [root(i) for i in range(n)]


def broken(labels: Sequence[int], cannot: np.ndarray) -> list[tuple[int, int]]:
    """The cannot-link pairs that share a label (none, when the clustering is right)."""
    lab = np.asarray(labels)
    i, j = np.nonzero(np.triu(np.asarray(cannot, dtype=bool), 1) & np.equal.outer(lab, lab))
    return list(zip(i.tolist(), j.tolist()))
