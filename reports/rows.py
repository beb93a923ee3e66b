"""Facts read from one result row, without pandas (``bench status`` imports this too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def job_cpu_seconds(row: Mapping[str, Any]) -> tuple[float, float] | None:
    """A finished job's process CPU seconds as (training, scoring), the raw G's scoring
    included in the second; None when the row records either part without a value (written
    before rows recorded CPU time, or resumed from such a checkpoint). The curve points
    tracked between training steps are in neither."""
    train, scoring = row.get("train_cpu_seconds"), row.get("eval_cpu_seconds")
    if train is None or scoring is None:
        return None
    raw = float((row.get("raw_g") or {}).get("eval_cpu_seconds") or 0.0)
    return float(train), float(scoring) + raw
