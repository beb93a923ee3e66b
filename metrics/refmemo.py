"""A small memo of values derived from a reference feature set (k-NN radii).

Every job of a run, every rung of the sanity ladder and every tracked point is scored against
the same reference features, and the reference's own 10k x 10k k-NN distances cost as much as
the rest of a k-NN metric. Values are keyed by a tag (which computation, which k) and a content
fingerprint of the reference (shape and sums that change with any value or row order), so a
different reference, or the same rows reordered, computes afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

KEEP = 8  # entries kept: two feature spaces x two k-NN families x two references

_MEMO: dict[tuple, torch.Tensor] = {}


def fingerprint(ref: torch.Tensor) -> tuple:
    """Shape and three float64 sums of ``ref``; the last one weights rows by their index."""
    import torch

    r = ref.double()
    rows = torch.arange(len(r), dtype=torch.float64)
    return (tuple(r.shape), str(ref.dtype), float(r.sum()), float(r.square().sum()),
            float(rows @ r.sum(1)))  # fmt: skip


def per_reference(
    ref: torch.Tensor, tag: Hashable, compute: Callable[[], torch.Tensor]
) -> torch.Tensor:
    """``compute()`` for this reference and tag, computed once while it stays among the last
    ``KEEP`` entries."""
    key = (tag, fingerprint(ref))
    if key not in _MEMO:
        if len(_MEMO) >= KEEP:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[key] = compute()
    return _MEMO[key]
