"""Make the metric-pipeline gate's committed input (.ci/pipeline/samples.npz): 1,000 uint8
images, 500 from the G_ema of a `dcgan-small` trained at the `ci` profile in fp32 (seed 0)
and 500 real training images (a `randperm` draw), interleaved, so that every metric sits away
from its limits (a generator this cheap alone leaves recall and coverage at about 0, where
a change to their math would not show).

    bench run --variants dcgan-small --profile ci --precision fp32 --inception-samples 0 \
        --out /tmp/pipe-src
    python .ci/pipeline/make_input.py /tmp/pipe-src/dcgan-small/seed0
    bench score .ci/pipeline/samples.npz --samples 1000 --inception-samples 64 \
        --ppl-samples 0 --device cpu --json > .ci/pipeline/expected.json

The images are fixed once committed; only the expected values are remade when a deliberate
change to the metrics moves them (say so in the CHANGELOG).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from bench.checkpoint import load_generator
from bench.sanity import real_draw
from metrics.suite import generate

N, SEED = 1_000, 2026


def main(job_dir: str) -> None:
    variant, G, _ = load_generator(Path(job_dir), "G_ema")
    fake, _ = generate(G, variant, N // 2, SEED)
    real, _ = real_draw(None, N // 2, SEED)
    images = torch.stack([fake, real], dim=1).reshape(N, *fake.shape[1:])  # fake, real, ...
    out = Path(__file__).with_name("samples.npz")
    np.savez_compressed(out, images=images[:, 0].numpy())
    print(f"{out}: {tuple(images.shape)} uint8 from {job_dir} and training draw {SEED}")


if __name__ == "__main__":
    main(sys.argv[1])
