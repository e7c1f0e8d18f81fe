"""Merge the records of several run folders into one results table (results.md, results.csv).

    paintseg results outputs/shared/amcp/box outputs/shared/grabcut/box --out benchmarks/results/x --title "..."

Each run counts only its records of the settings it was last run with. A folder that is not a
run folder is refused; a run with unfinished or failed items is in the table as far as it got,
and the command then says which and exits 1, so a partial table never passes for a complete one.
"""
from __future__ import annotations

import argparse
import sys

from ..run.folder import RunFolder
from ..run.results import run_rows, write_results


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="paintseg results", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="output folders of prediction runs")
    parser.add_argument("--out", required=True, help="folder for results.md and results.csv")
    parser.add_argument("--title", default="Results")
    parser.add_argument("--notes", default="", help="text above the table: subsets, settings, machine")
    options = parser.parse_args(args)
    runs = [RunFolder(path) for path in options.runs]
    for run in runs:
        if run.read_settings() is None:
            sys.exit(f"paintseg results: {run.root} is not a run folder (no settings.json): "
                     "give the output_dir of a paintseg predict run")
    rows, incomplete = [], []
    for run in runs:
        failures = run.failures()
        rows += run_rows(run, run.current_records(), failures)
        left = sum(len(names) for names in run.unfinished().values())
        if left or failures:
            incomplete.append(f"{run.root}: {left} item(s) unfinished, {len(failures)} failed")
    print(write_results(rows, options.out, options.title, options.notes))
    if incomplete:
        sys.exit("paintseg results: the table covers only finished items; " + "; ".join(incomplete))
