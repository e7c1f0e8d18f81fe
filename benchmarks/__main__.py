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
    parser.add_argument("--dry-run", action="store_true",
                        help="apply the config's dry_run block: its cases on tiny models at tiny sizes, here")
    parser.add_argument("--work-dir", type=Path,
                        help="write the random checkpoints and the engines here (default: the config's folders)")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="start no case or export after this many seconds; the rest are reported skipped")
    args = parser.parse_args(argv)
    config = load_config(args.config, dry_run=args.dry_run, work_dir=args.work_dir)

    def folder(results: dict) -> Path:
        return args.out or REPO / "benchmarks" / "results" / f"{results['date'][:10]}-{results['machine_tag']}"

    # Every file, the plot too, written after every case: a run stopped from outside keeps the cases it finished.
    results = run_suite(config, reuse_engines=args.reuse_engines, time_budget=args.time_budget,
                        on_progress=lambda partial: write_results(partial, folder(partial)))
    out = folder(results)
    write_results(results, out)
    print(f"wrote {out}/results.json, results.md, latency.png")
    failed = [r["case"]["name"] for r in results["cases"] if r["status"] == "failed"]
    if failed:
        print(f"failed cases: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
