"""Compare the SPC engine with the frozen copy of the engine it replaced
(tests/audits/reference_spc) on random calls of every entry point: results must be
identical, field by field and explanation by explanation (issue #19).

    python3 -m scripts.compare_spc                 # 100,000 random calls
    python3 -m scripts.compare_spc --n 5000 --seed 7

CI runs a seeded sample of 1,500 (tests/audits/test_spc_speed.py); this runs the rest.
Exits 1 and prints the first differences if there are any.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    from tests.audits.spc_compare import compare_random

    started = time.perf_counter()
    count, differences = compare_random(args.n, args.seed)
    elapsed = time.perf_counter() - started
    print(f"{count:,} random calls compared in {elapsed:.0f} s: {len(differences)} different")
    for difference in differences[:5]:
        print(difference)
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
