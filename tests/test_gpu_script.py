"""benchmarks/gpu/run.sh --dry-run: the GPU run's steps on this CPU with tiny models, so the
script is known to work before a GPU is lent. It reuses the session's AOTInductor packages of
the tiny checkpoint (the script's own export of them is the same code, tested in test_aoti)."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from benchmarks.cases import REPO
from tests.aoti_engine import tiny_aoti_engine

# What comes back from a device call: at most 8 files, at most 2 folders down.
RETURNED_FILES = ["bench/latency.png", "bench/results.json", "bench/results.md", "env.txt", "predict.txt", "run.log"]

# One worker compiles the tiny AOTInductor packages (minutes) and runs every test that needs
# them: on two workers the second would wait on the compile's lock with its core idle.
pytestmark = pytest.mark.xdist_group("aoti")


def test_gpu_script_dry_run(tmp_path_factory):
    _, engine_dir, _ = tiny_aoti_engine(tmp_path_factory)
    root = tmp_path_factory.mktemp("gpu-script")
    work, out = root / "work", root / "out"
    shutil.copytree(engine_dir, work / "bench" / "engines" / "aoti-512")
    # Limits this busy machine cannot spend: every case must run (the budget has its own test).
    env = {**os.environ, "OUT": str(out), "PAINTSEG_GPU_WORK": str(work), "PYTHON": sys.executable,
           "PAINTSEG_GPU_BUDGET": "3000", "PAINTSEG_GPU_STEP_LIMIT": "600"}
    run = subprocess.run(["bash", "benchmarks/gpu/run.sh", "--dry-run"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=1200)
    log = (out / "run.log").read_text()
    assert run.returncode == 0, log[-4000:]
    assert "failed steps: none" in log
    assert re.search(r"\n\d+ skipped, \d+ deselected", log)  # the gpu-marked tests, all skipped without CUDA
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == RETURNED_FILES
    assert "| generated | box | amcp | 2 | 0 |" in (out / "predict.txt").read_text()

    config = yaml.safe_load((REPO / "configs/bench/gpu.yaml").read_text())
    results = json.loads((out / "bench/results.json").read_text())
    by_name = {r["case"]["name"]: r for r in results["cases"]}
    assert list(by_name) == [case["name"] for case in config["cases"]]
    assert {name: r["status"] for name, r in by_name.items()} == dict.fromkeys(by_name, "ok")
    assert all(ratio["status"] == "ok" for ratio in results["ratios"])
    # The exact cuts halve the UNet's samples (guidance shortcut) and leave the masks as they were.
    unet = lambda name: by_name[name]["statistics"]["cost_per_image"]["networks"]["unet"]["samples"]
    assert unet("reference torch float16") == 2 * unet("reference torch float16 exact cuts")
    (check,) = results["mask_checks"]
    assert check["status"] == "identical", check
