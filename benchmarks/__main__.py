"""python -m benchmarks --config configs/bench/cpu.yaml [--out DIR]: see benchmarks/README.md."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cases import REPO, load_config
from .report import write_results
from .suite import run_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="Latency of AMCP per iteration, "
                                     "per component and per backend; writes results.json, results.md, latency.png.")
    parser.add_argument("--config", type=Path, required=True, help="a benchmark config, e.g. configs/bench/cpu.yaml")
    parser.add_argument("--out", type=Path,
                        help="results folder (default: benchmarks/results/<date>-<machine tag>)")
    parser.add_argument("--reuse-engines", action="store_true",
                        help="use engine directories exported before (their manifest.json exists) instead of exporting")
    args = parser.parse_args(argv)
    results = run_suite(load_config(args.config), reuse_engines=args.reuse_engines)
    out = args.out or REPO / "benchmarks" / "results" / f"{results['date'][:10]}-{results['machine_tag']}"
    write_results(results, out)
    print(f"wrote {out}/results.json, results.md, latency.png")
    failed = [r["case"]["name"] for r in results["cases"] if r["status"] == "failed"]
    if failed:
        print(f"failed cases: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
