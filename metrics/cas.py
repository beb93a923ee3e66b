"""Classification Accuracy Score (Ravuri and Vinyals, NeurIPS 2019), for conditional
generators: train a classifier on generated, labelled samples only and test it on the real
test split; report its top-1 accuracy (``cas``) beside the same classifier trained the same
way on as many real training images (``cas_real``, the ceiling for that budget).

Label accuracy asks whether each sample looks like its class to a fixed evaluator; CAS asks
whether the class-conditional distributions are rich and correct enough to learn the classes
from, which a generator that draws one good image per class fails. The classifier is small
and fixed (:class:`CASNet`: two conv layers and two linear ones), trained with Adam for
``cas_epochs`` epochs from the metric seed; all of it is recorded in the protocol. CPU
results depend on the thread count, as every CPU result here does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metrics.family import EvalSettings, Family, MetricKey

if TYPE_CHECKING:
    import torch

CAS_LR = 1e-3
CAS_BATCH = 128
_REAL: dict[tuple, float] = {}  # cas_real by its inputs: every job of a run shares it


@dataclass(frozen=True)
class ImagesContext:
    """Labelled images of one scoring: the generated ones (uint8, N x 1 x 28 x 28, with the
    classes they were generated for) and the real test and training images and labels of
    the variant's classes; ``class_ids`` are those classes, in order."""

    gen: torch.Tensor
    gen_labels: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor
    train: torch.Tensor
    train_labels: torch.Tensor
    class_ids: tuple[int, ...]
    settings: EvalSettings
    device: str = "cpu"


def _net(n_classes: int) -> torch.nn.Module:
    """The fixed CAS classifier (about 110k parameters for 10 classes)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, n_classes),
    )  # fmt: skip


def train_and_test(
    images: torch.Tensor,
    labels: torch.Tensor,
    test: torch.Tensor,
    test_labels: torch.Tensor,
    class_ids: tuple[int, ...],
    epochs: int,
    seed: int,
    device: str = "cpu",
) -> float:
    """Top-1 test accuracy of :func:`_net` trained on ``images`` (uint8) with class-id
    ``labels`` for ``epochs`` epochs (Adam, batch 128, order and init from ``seed``)."""
    import torch
    import torch.nn.functional as F

    ids = torch.tensor(class_ids)
    if not (torch.isin(labels, ids).all() and torch.isin(test_labels, ids).all()):
        raise ValueError("labels outside the variant's classes")
    index = torch.full((max(class_ids) + 1,), -1, dtype=torch.long)
    index[ids] = torch.arange(len(class_ids))
    y, y_test = index[labels], index[test_labels]
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _net(len(class_ids)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=CAS_LR)

    def prep(x: torch.Tensor) -> torch.Tensor:
        return x.to(device).float().div(127.5).sub(1.0)

    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=g)
        for i in range(0, len(order), CAS_BATCH):
            batch = order[i : i + CAS_BATCH]
            loss = F.cross_entropy(net(prep(images[batch])), y[batch].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(test), 1000):
            pred = net(prep(test[i : i + 1000])).argmax(1).cpu()
            correct += int((pred == y_test[i : i + 1000]).sum())
    return correct / len(test)


def _digest(*tensors: torch.Tensor) -> str:
    """sha256 of the tensors' bytes: the identity of the real images a baseline saw."""
    import hashlib

    h = hashlib.sha256()
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def compute(ctx: ImagesContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """``cas`` of the generated images and ``cas_real`` of as many real training images
    (a ``randperm(metric seed)`` draw), both tested on the test split of the classes."""
    import torch

    s = ctx.settings
    n = min(s.cas_samples, len(ctx.gen))
    args = (ctx.test, ctx.test_labels, ctx.class_ids, s.cas_epochs, s.metric_seed, ctx.device)
    cas = train_and_test(ctx.gen[:n], ctx.gen_labels[:n], *args)
    pick = torch.randperm(len(ctx.train), generator=torch.Generator().manual_seed(s.metric_seed))
    pick = pick[:n]
    key = (
        _digest(ctx.train[pick], ctx.train_labels[pick], ctx.test, ctx.test_labels),
        ctx.class_ids,
        s.cas_epochs,
        s.metric_seed,
        ctx.device,
        torch.get_num_threads(),
    )
    if key not in _REAL:
        _REAL[key] = train_and_test(ctx.train[pick], ctx.train_labels[pick], *args)
    real = _REAL[key]
    notes = {
        "cas": {
            "samples": n, "epochs": s.cas_epochs, "optimizer": f"Adam lr {CAS_LR}",
            "batch": CAS_BATCH, "classifier": "conv16-conv32-fc64 (metrics/cas.py)",
            "test": len(ctx.test), "real": f"randperm(seed {s.metric_seed})[:{n}] of train",
        },
    }  # fmt: skip
    return {"cas": cas, "cas_real": real}, notes


FAMILY = Family(
    "cas",
    (
        MetricKey("cas", True, "Classification Accuracy Score: test accuracy of a classifier "
                  "trained on the generated samples only (conditional variants)",
                  "conditional", headline=True),
        MetricKey("cas_real", True, "the same classifier trained on as many real training "
                  "images: the ceiling cas is read against", "conditional",
                  unranked="the real-data reference of cas, equal for every variant"),
    ),
    compute,
    kind="images",
)  # fmt: skip
