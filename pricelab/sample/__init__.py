"""The bundled synthetic sample: its generator and where its files live."""

from __future__ import annotations

from pricelab._resources import sample_dir
from pricelab.sample.generator import FILES, generate_sample
from pricelab.sample.substitutes import generate_substitutes

__all__ = ["FILES", "generate_sample", "generate_substitutes", "sample_dir"]
