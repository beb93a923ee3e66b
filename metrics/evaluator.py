"""The Fashion-MNIST evaluator: a small CNN shipped with the package, for domain metrics.

ImageNet Inception features know little about 28x28 grayscale clothing; a classifier trained
on Fashion-MNIST itself gives metrics in the data's own terms: a domain Inception Score over
the 10 classes (maximum 10), a class histogram (mode coverage), label accuracy of conditional
generators, and FID/KID/precision/recall on its 128-d penultimate features.

Every user must score with the same network, so the weights ship inside the package
(``metrics/weights/fmnist_evaluator.pt``) with their sha256 in :data:`EVALUATOR_SHA256`,
and ``bench evaluator train`` reproduces them: fixed seed, fixed data order, CPU, fp32.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from metrics.common import file_digest, save_atomic

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "fmnist_evaluator.pt"
# sha256 of the shipped weights file; `bench evaluator train` prints the hash it produced.
EVALUATOR_SHA256 = "5fa5f14aa2da0a590b0d375381ecc5f0d6be503c922bbb7a416cfef98c93323d"
FEATURE_DIM = 128


class FMNISTEvaluator(nn.Module):
    """uint8 or float images -> (10 logits, 128-d penultimate features).

    Input: uint8 (N, C, H, W) in 0..255 (grayscale or RGB, any size; resized to 28x28 with
    antialiasing, RGB averaged to gray) or float in [-1, 1] at 28x28. Convolutions
    32-64-128 with batch norm and max pooling (28 -> 14 -> 7 -> 3), a 128-d dense layer
    (the features), dropout, and the 10-way head.
    """

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()

        def conv(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]

        self.features = nn.Sequential(
            *conv(1, 32),
            nn.MaxPool2d(2),  # 14x14
            *conv(32, 64),
            nn.MaxPool2d(2),  # 7x7
            *conv(64, 128),
            nn.MaxPool2d(2),  # 3x3
            nn.Flatten(),
            nn.Linear(128 * 3 * 3, FEATURE_DIM),
            nn.ReLU(True),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURE_DIM, 10)

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        """uint8 images of any size and 1 or 3 channels -> float (N, 1, 28, 28) in [-1, 1]."""
        if x.dtype == torch.uint8:
            x = x.float().div_(127.5).sub_(1.0)
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        if x.shape[-2:] != (28, 28):
            x = F.interpolate(
                x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False
            )
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, features) for a batch."""
        f = self.features(self.prepare(x))
        return self.head(self.dropout(f)), f


@dataclass(frozen=True)
class EvaluatorTraining:
    """The recipe of the shipped evaluator; `bench evaluator train` runs exactly this.

    The Inception Score of real data is a statement about how confident the classifier is on
    the images it was built for, so the recipe fits the training set closely (no dropout, no
    weight decay, 14 one-cycle epochs) and keeps one augmentation, horizontal flips (garments
    are left-right symmetric), which holds the test accuracy above 93%. The recipes measured
    on the way, and the shipped one's figures, are in docs/metrics.md.
    """

    epochs: int = 14  # ~20 s each on 2 idle CPU cores: inside the 5-minute budget
    batch_size: int = 128
    bf16: bool = True  # autocast for training speed on AVX-512 bf16 CPUs; weights stay fp32
    lr: float = 3e-3  # one-cycle peak for AdamW
    weight_decay: float = 0.0  # decay blurred the predictions (lower IS)
    seed: int = 0  # init, data order, dropout and augmentation all derive from it
    shift: int = 0  # random translation (px, background fill); shifts lowered the IS
    dropout: float = 0.0  # before the head; kept as an option
    flip: bool = True  # random horizontal flips: garments are left-right symmetric


def _augment(x: torch.Tensor, cfg: EvaluatorTraining, g: torch.Generator) -> torch.Tensor:
    n, s = x.shape[0], cfg.shift
    if cfg.flip:
        flip = torch.rand(n, generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if s:
        padded = F.pad(x, (s, s, s, s), value=-1.0)[:, 0]  # (N, 28 + 2s, 28 + 2s), background
        dy = torch.randint(0, 2 * s + 1, (n, 1, 1), generator=g)
        dx = torch.randint(0, 2 * s + 1, (n, 1, 1), generator=g)
        rows = torch.arange(28).view(1, 28, 1) + dy
        cols = torch.arange(28).view(1, 1, 28) + dx
        x = padded[torch.arange(n).view(n, 1, 1), rows, cols].unsqueeze(1)
    return x


@torch.no_grad()
def accuracy(model: FMNISTEvaluator, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in eval mode."""
    model.eval()
    correct = 0
    for i in range(0, len(images), 1000):
        logits, _ = model(images[i : i + 1000])
        correct += int((logits.argmax(1) == labels[i : i + 1000]).sum())
    return correct / len(images)


def train_evaluator(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    cfg: EvaluatorTraining | None = None,
    log: Callable[[str], None] = print,
) -> tuple[FMNISTEvaluator, dict]:
    """Train the evaluator deterministically (CPU, fp32). Returns the model and a report.

    ``*_images`` are uint8 (N, 1, 28, 28); labels int64.
    """
    cfg = cfg or EvaluatorTraining()
    torch.manual_seed(cfg.seed)
    model = FMNISTEvaluator(cfg.dropout).to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(cfg.seed)
    x_all = FMNISTEvaluator.prepare(train_images)
    steps_per_epoch = len(x_all) // cfg.batch_size
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch
    )
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(x_all), generator=g)
        total, correct = 0.0, 0
        for s in range(steps_per_epoch):
            idx = perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            x = _augment(x_all[idx], cfg, g).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                logits, _ = model(x)
                loss = F.cross_entropy(logits.float(), train_labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
            correct += int((logits.argmax(1) == train_labels[idx]).sum())
        # Test accuracy only once, at the end: a pass over the 10k test images costs ~4 s on
        # 2 cores (a fifth of an epoch), and the recipe is fixed, not selected on the test set.
        log(
            f"epoch {epoch + 1}/{cfg.epochs}: loss {total / steps_per_epoch:.4f}, "
            f"train accuracy {correct / (steps_per_epoch * cfg.batch_size):.4f} "
            f"(augmented, while training), {time.perf_counter() - t0:.0f} s"
        )
    model = model.to(memory_format=torch.contiguous_format).eval()
    report = {
        "test_accuracy": accuracy(model, test_images, test_labels),
        "seconds": round(time.perf_counter() - t0, 1),
        "recipe": asdict(cfg),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    return model, report


def save_evaluator(model: FMNISTEvaluator, path: str | Path) -> str:
    """Write the state dict atomically (temp file + rename) and return the file's sha256.

    Serialised through a buffer: ``torch.save`` to a path embeds the file's name in the
    archive, which would make the hash depend on where the file was written.
    """
    save_atomic({k: v.detach().contiguous() for k, v in model.state_dict().items()}, path)
    return file_digest(path)


class EvaluatorUnavailable(RuntimeError):
    """The shipped weights are missing or do not match their recorded hash."""


def load_evaluator(
    path: str | Path | None = None, device: str | torch.device = "cpu"
) -> tuple[FMNISTEvaluator, str]:
    """The evaluator in eval mode and the sha256 of its weights file.

    Raises:
        EvaluatorUnavailable: missing file, or the shipped file's hash differs from
            :data:`EVALUATOR_SHA256` (a corrupted or substituted network would make every
            domain metric incomparable).
    """
    p = Path(path) if path is not None else WEIGHTS_PATH
    if not p.is_file():
        raise EvaluatorUnavailable(
            f"evaluator weights not found at {p}; run `bench evaluator train --out {p}`"
        )
    digest = file_digest(p)
    if path is None and EVALUATOR_SHA256 and digest != EVALUATOR_SHA256:
        raise EvaluatorUnavailable(
            f"{p} has sha256 {digest[:16]}..., the package expects {EVALUATOR_SHA256[:16]}...; "
            "reinstall the package or retrain with `bench evaluator train`"
        )
    model = FMNISTEvaluator()
    model.load_state_dict(torch.load(p, map_location="cpu", weights_only=True))
    return model.to(device).eval().requires_grad_(False), digest


def entropy_bits(p: torch.Tensor) -> float:
    """Shannon entropy in bits of a probability vector."""
    p = p[p > 0]
    return float(-(p * p.log()).sum() / math.log(2))
