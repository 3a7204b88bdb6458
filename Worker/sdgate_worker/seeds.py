"""From the request's unsigned 64-bit seed to torch's generators.

torch's CPU generator (mt19937) keeps only the low 32 bits of a seed, so seeds that differ only above bit
31 would repeat the same image. Seeds below 2^32 are used as they are (the image a diffusers script with
`manual_seed(seed)` gives on the same weights); larger ones are mixed down to 32 bits with splitmix64, so
their high bits count.
"""

from __future__ import annotations

import torch

UINT32 = 2**32
UINT64_MASK = 2**64 - 1


def torch_seed(seed: int) -> int:
    if seed < UINT32:
        return seed
    z = (seed + 0x9E3779B97F4A7C15) & UINT64_MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & UINT64_MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & UINT64_MASK
    z ^= z >> 31
    return (z ^ (z >> 32)) & (UINT32 - 1)


def sample_generators(seed: int, samples: int) -> list[torch.Generator]:
    """One generator per sample, seeded with seed + i, so sample i is reproducible on its own. CPU
    generators: the same noise whatever device runs the model."""
    return [torch.Generator("cpu").manual_seed(torch_seed((seed + i) & UINT64_MASK)) for i in range(samples)]


def seed_global(seed: int) -> None:
    """Stochastic samplers that do not take the pipeline's generator (SD3's, DPM++ SDE's Brownian tree)
    draw from torch's global generator."""
    torch.manual_seed(torch_seed(seed))
