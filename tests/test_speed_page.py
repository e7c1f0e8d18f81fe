"""benchmarks.speed's page: the time split from a run's records, and the report from its numbers."""
import json
import os

import pytest

from benchmarks.speed import main, report, steady_rate, time_split

ROW = {"dataset": "gen", "prompt": "box", "method": "amcp", "images": "2", "failed": "0", "iou": "0.9",
       "seconds_per_image": "0.5"}


def run(rows=(ROW,), wall=3.0):
    return {"wall_seconds": wall, "load_before": 1.0, "load_after": 1.5, "rows": list(rows), "output_tail": "9 passed\n"}


def test_the_split_separates_the_refinement_from_the_mask_updates(tmp_path):
    records = tmp_path / "gen" / "records"
    records.mkdir(parents=True)
    steps = [{"paint": 0.1, "features": 0.2, "update": 0.3, "refine": 0.0},
             {"paint": 0.1, "features": 0.2, "update": 0.5, "refine": 0.4}]
    for name, seconds in (("a", 1.0), ("b", 2.0)):
        (records / f"{name}.json").write_text(json.dumps({"seconds": seconds, "timings": steps}))
    assert time_split(tmp_path) == {"gen": {"item": 1.5, "paint": 0.2, "features": 0.4, "refine": 0.4, "update": 0.4}}


def test_the_steady_rate_counts_from_the_first_record_to_the_last_of_every_rank(tmp_path):
    for rank, (name, written) in enumerate((("a", 100.0), ("b", 101.0), ("c", 104.0))):
        path = tmp_path / f"set{rank % 2}" / "records" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
        os.utime(path, (written, written))
    assert steady_rate(tmp_path) == 0.5  # 2 images after the first, in 4 s


def test_the_report_gives_every_measurement_with_its_load():
    grabcut = {**ROW, "method": "grabcut", "seconds_per_image": "0.4"}
    results = {"date": "today", "cores": 2,
               "quick_start": {"default": run(), "manual": {1: run(), 2: run(rows=[{**ROW, "seconds_per_image": "1.0"}])}},
               "shared": {"amcp": {**run(), "split": {"gen": dict.fromkeys(("item", "paint", "features", "update", "refine"), 0.1)}},
                          "grabcut": run(rows=[grabcut])},
               "processes": {1: {**run(), "images_per_second": 2.0, "steady_images_per_second": 3.0},
                             2: {**run(), "images_per_second": 3.4, "steady_images_per_second": 5.7}},
               "suite": run()}
    page = report(results)
    assert "Default / best manual s/image: 1.00" in page
    assert "2 processes / 1 process, images/s: 1.70 by wall time" in page and "1.90 once started" in page
    assert "| grabcut | gen | 2 | 0 | 0.9 | 0.4 | 3.0 | 1.0 / 1.5 |" in page
    assert "`9 passed`" in page


def test_a_bad_image_cap_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--max-images", "0"])
    assert "--max-images must be >= 1" in capsys.readouterr().err
