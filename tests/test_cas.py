"""Classification Accuracy Score (metrics/cas.py): learnable labelled samples score near the
real-data ceiling, samples whose labels say nothing score at chance; the family runs only on
labelled (conditional) scorings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from metrics.cas import FAMILY, ImagesContext, train_and_test
from metrics.family import EvalSettings


def classes_as_stripes(
    n: int, seed: int, ids: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy images whose class is the row of a bright stripe: learnable by any classifier."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor(ids)[torch.randint(len(ids), (n,), generator=g)]
    x = torch.randint(0, 60, (n, 1, 28, 28), generator=g)
    for i, c in enumerate(labels.tolist()):
        row = 2 + 2 * ids.index(c)
        x[i, 0, row : row + 2] = 230
    return x.to(torch.uint8), labels


def test_learnable_samples_score_high_and_shuffled_labels_at_chance() -> None:
    ids = (0, 3, 5, 9)
    train, y = classes_as_stripes(800, 0, ids)
    test, y_test = classes_as_stripes(400, 1, ids)
    good = train_and_test(train, y, test, y_test, ids, epochs=3, seed=0)
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(2))]
    blind = train_and_test(train, shuffled, test, y_test, ids, epochs=3, seed=0)
    assert good > 0.95, good
    assert abs(blind - 0.25) < 0.12, blind
    assert good == train_and_test(train, y, test, y_test, ids, epochs=3, seed=0)  # seeded
    with pytest.raises(ValueError, match="outside the variant's classes"):
        train_and_test(train, y + 1, test, y_test, ids, epochs=1, seed=0)


def test_the_family_reports_cas_beside_cas_real() -> None:
    ids = (1, 2)
    gen, y = classes_as_stripes(600, 0, ids)
    test, y_test = classes_as_stripes(200, 1, ids)
    train, y_train = classes_as_stripes(600, 2, ids)
    settings = EvalSettings(num_samples=600, cas_samples=512, cas_epochs=5)
    values, notes = FAMILY.compute(ImagesContext(gen, y, test, y_test, train, y_train, ids,
                                                 settings))  # fmt: skip
    assert set(values) == {"cas", "cas_real"} and values["cas_real"] > 0.9
    assert values["cas"] > 0.9  # learnable samples: about the ceiling
    assert notes["cas"]["samples"] == 512 and notes["cas"]["epochs"] == 5


@pytest.mark.integration
def test_cas_in_the_rows_of_conditional_variants_only(synthetic_dir: Path, tmp_path: Path) -> None:
    from tests.conftest import invoke

    run = tmp_path / "r"
    result = invoke("run", "--variants", "cdcgan,dcgan-small", "--profile", "smoke", "--kimg",
                    "0.256", "--inception-samples", "0", "--set", "batch_size=64",
                    "--data-dir", synthetic_dir, "--out", run, "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {
        r["variant"]: r
        for r in map(json.loads, (run / "results.jsonl").read_text().split("\n")[:-1])
    }
    assert 0.0 <= rows["cdcgan"]["metrics"]["cas"] <= 1.0
    assert "cas_real" in rows["cdcgan"]["metrics"]
    assert "cas" not in rows["dcgan-small"]["metrics"]
