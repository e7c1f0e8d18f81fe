"""The images where AMCP needed the most clicks, as overlays beside the baseline's, clicks drawn.

    python -m benchmarks.worst_clicks --amcp outputs/clicks/amcp/clicks --baseline outputs/clicks/grabcut/clicks \\
        --out benchmarks/results/x/worst

Ranks the images of the AMCP run folder(s) by NoC@90, then by IoU after the last click (lower is
worse), and writes for the ``--count`` worst: the AMCP overlay (its last mask, every click: yellow
positive, blue negative) left, the baseline's overlay of the same image right, and a README
table. Overlays are the prediction writer's; nothing is segmented again.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from paintseg_engine.run.folder import RunFolder

GAP = 8  # px between the two overlays
JPEG_QUALITY = 85  # pictures for a results page: a tenth of the PNG's size


def by_name(folders: list[Path]) -> dict[tuple[str, str], tuple[RunFolder, object]]:
    """(dataset, name) -> (its run folder, its record), over the current records of ``folders``."""
    found = {}
    for folder in map(RunFolder, folders):
        for record in folder.current_records():
            found[record.dataset, record.name] = (folder, record)
    return found


def side_by_side(left: Path, right: Path | None) -> np.ndarray:
    a = cv2.imread(str(left))
    if right is None or not right.is_file():
        return a
    b = cv2.imread(str(right))
    height = max(a.shape[0], b.shape[0])
    pad = lambda img: cv2.copyMakeBorder(img, 0, height - img.shape[0], 0, 0, cv2.BORDER_CONSTANT)  # noqa: E731
    return np.concatenate([pad(a), np.zeros((height, GAP, 3), np.uint8), pad(b)], axis=1)


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amcp", nargs="+", type=Path, required=True, help="AMCP click run folders")
    parser.add_argument("--baseline", nargs="+", type=Path, required=True, help="baseline click run folders")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=10)
    options = parser.parse_args(args)
    amcp, baseline = by_name(options.amcp), by_name(options.baseline)
    worst = sorted(amcp, key=lambda key: (-amcp[key][1].noc90, amcp[key][1].iou))[: options.count]
    options.out.mkdir(parents=True, exist_ok=True)
    lines = ["# The images where AMCP needed the most clicks (NoC@90, then last IoU)", "",
             "Left: AMCP (weight-free default) after its last click, right: the seeded-cut baseline after its "
             "own last click; yellow dots positive clicks, blue negative (each method gets the clicks its own "
             "errors call for).", "",
             "| rank | dataset | image | AMCP NoC@90 | AMCP clicks | AMCP last IoU | baseline NoC@90 | baseline last IoU |",
             "|---|---|---|---|---|---|---|---|"]
    for rank, (dataset, name) in enumerate(worst, start=1):
        folder, record = amcp[dataset, name]
        peer = baseline.get((dataset, name))
        right = peer[0].overlay_path(dataset, name) if peer else None
        file = f"{rank:02d}_{dataset}_{name}.jpg".replace(" ", "_")  # COCO names hold spaces; links do not
        cv2.imwrite(str(options.out / file), side_by_side(folder.overlay_path(dataset, name), right),
                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        theirs = (f"{peer[1].noc90} | {peer[1].iou:.3f}" if peer else "- | -")
        lines.append(f"| {rank} | {dataset} | [{name}]({file}) | {record.noc90} | {len(record.click_ious)} | "
                     f"{record.iou:.3f} | {theirs} |")
    (options.out / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
