"""Profiles: named budgets so that a run's cost and comparability are one word.

All variants in a profile get the same budget in kimg (thousands of real images shown to the
discriminator), so variants with different batch sizes or critic steps see the same data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Profile:
    """A training (and, later, evaluation) budget."""

    name: str
    kimg: float  # real images shown to D, in thousands, per (variant, seed)
    checkpoint_kimg: float  # resumable checkpoint interval; bounds the work lost to a kill
    grid_kimg: float  # fixed-noise sample grid interval (the training-progress strip)
    eval_samples: int  # generated samples for the evaluator metrics (vs the 10k test split)
    description: str
    inception_samples: int = 0  # generated (and reference) images for the Inception metrics
    ppl_samples: int = 0  # latent pairs for the perceptual path length (0: no smoothness)
    track_kimg: float = 0.0  # FID/IS(fmnist) of G_ema during training, every this many kimg
    track_samples: int = 0  # generated samples per tracked point (0: no tracking)
    copying_inception: bool = False  # the data-copying test on Inception features as well
    cas_samples: int = 0  # Classification Accuracy Score of conditional variants (0: off)
    # The raw G's Inception metrics too, for variants set beside a published number: Lucic
    # et al. score G itself, every row here scores G_ema (needs inception_samples > 0)
    raw_g_inception: bool = False

    def to_dict(self) -> dict:
        """JSON-ready form for config.json."""
        return asdict(self)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "smoke",
            kimg=1.0,
            checkpoint_kimg=0.5,
            grid_kimg=0.5,
            eval_samples=500,
            ppl_samples=100,
            track_kimg=0.5,
            track_samples=200,
            cas_samples=500,
            description="seconds per variant: exercises every code path, numbers meaningless",
        ),
        Profile(
            "ci",
            kimg=60.0,
            checkpoint_kimg=20.0,
            grid_kimg=20.0,
            eval_samples=2_000,
            ppl_samples=200,
            track_kimg=20.0,
            track_samples=1_000,
            description="the CI quality gate: one epoch of the fast variants, 2k scored samples "
            "(12 kimg left dcgan at noise level: FID(fmnist) 441 vs noise 442)",
        ),
        Profile(
            "quick",
            kimg=60.0,
            checkpoint_kimg=10.0,
            grid_kimg=6.0,
            eval_samples=10_000,
            ppl_samples=2_000,
            track_kimg=10.0,
            track_samples=1_000,
            cas_samples=10_000,
            description="CPU default: one epoch of Fashion-MNIST per variant, minutes each; "
            "evaluator metrics on 10k samples; no Inception metrics (--inception-samples 1000 "
            "adds them at about 1 min per job on 2 cores)",
        ),
        Profile(
            "lucic",
            kimg=1_000.0,
            checkpoint_kimg=25.0,
            grid_kimg=100.0,
            eval_samples=10_000,
            inception_samples=10_000,
            # The data-copying test runs on the evaluator's features only: on Inception
            # features it needs every training image through Inception first (60,000
            # images, about 1.5 h on 2 CPU cores per machine); `bench score
            # --copying-inception` computes it for a job's checkpoint.
            cas_samples=10_000,
            raw_g_inception=True,
            ppl_samples=10_000,
            track_kimg=50.0,
            track_samples=5_000,
            description="Lucic et al. 2018's protocol: 20 epochs as compare_gan v1 counts them "
            "(20 x 50,000 real images shown to D, one real batch per D step, G every n_critic "
            "D steps), 10k generated vs the 10k test images on TF-Inception pool3 (GPU-sized: "
            "hours per variant on CPU)",
        ),
    )
}
DEFAULT_PROFILE = "quick"


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ValueError listing the valid names otherwise."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[name]
