"""Regenerate the bundled sample data (``data/sample``) from its seeded generator.

Usage::

    python examples/make_sample.py                 # rewrites data/sample with the default seed
    python examples/make_sample.py --out /tmp/s --seed 7
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "data" / "sample"

try:
    from pricelab.sample import generate_sample, generate_substitutes
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))
    from pricelab.sample import generate_sample, generate_substitutes


def main(argv: list[str] | None = None) -> None:
    """Parse ``--out``/``--seed`` and write the sample tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--seed", type=int, default=20261127, help="random seed")
    args = parser.parse_args(argv)
    files = generate_sample(args.out, seed=args.seed)
    files.update(generate_substitutes(args.out))  # the substitutes sample (its own seed)
    for name, path in files.items():
        print(f"{name:<18} {path}  {path.stat().st_size / 1024:8.1f} KiB")


if __name__ == "__main__":
    main()
