"""The benchmark suite on tiny models: it runs every part and writes well-formed results.
No timing assertions: only that the numbers exist, are positive and finite, and are counted right."""
import importlib.util
import json
import math

import pytest
import torch
import yaml

from benchmarks.__main__ import main
from benchmarks.cases import REPO, load_config, resolve

# One xdist worker runs the whole module: the tiny benchmark run (a module fixture) happens once.
pytestmark = pytest.mark.xdist_group("benchmarks")

TINY_CONFIG = REPO / "configs" / "bench" / "tiny.yaml"


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """configs/bench/tiny.yaml with its models and engines in a fresh folder, run once."""
    root = tmp_path_factory.mktemp("bench")
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["models_dir"] = str(root / "models")
    for name, engine in config["engines"].items():
        engine["out"] = str(root / "engines" / name)
    config_file = root / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(config))
    out = root / "results"
    status = main(["--config", str(config_file), "--out", str(out)])
    return config, out, status


def test_suite_writes_json_markdown_and_plot(tiny_run):
    config, out, status = tiny_run
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    machine = results["machine"]
    assert machine["cpu_cores"] >= 1 and machine["torch_threads"] >= 1 and "gpu" in machine
    assert machine["versions"]["torch"] and results["machine_tag"]
    assert results["config"]["cases"] and len(results["load_average_at_start"]) == 3

    sweep_points = sum(len(sweep["values"]) for sweep in config["scaling"])
    assert len(results["cases"]) == len(config["cases"]) + sweep_points
    assert {r["status"] for r in results["cases"]} <= {"ok", "skipped"}, [r.get("error") for r in results["cases"]]
    by_name = {r["case"]["name"]: r for r in results["cases"]}
    for name in ("weight-free", "reference torch", "fast torch", "fast torch-compile", "fast onnxruntime"):
        assert by_name[name]["status"] == "ok"
    assert by_name["weight-free"]["random_weights"] is None and by_name["fast torch"]["random_weights"] is True

    defaults = config["case_defaults"]
    for record in results["cases"]:
        if record["status"] != "ok":
            assert record["skip_reason"]  # every skip says why
            continue
        stats, case = record["statistics"], record["case"]
        assert stats["per_image"]["n"] == case["repeats"] * config["images"]["count"]
        assert positive(stats["per_image"]["median"]) and stats["per_image"]["p90"] >= stats["per_image"]["median"]
        assert positive(stats["images_per_second"]) and positive(record["peak_memory"]["cpu_max_rss_mib"])
        assert positive(record["cores_busy"])
        steps_per_kind = stats["iterations_per_image"] // 2
        for step in ("inpaint", "outpaint"):
            parts = stats["per_step"][step]
            assert parts["seconds"]["n"] == stats["per_image"]["n"] * steps_per_kind
            assert positive(parts["seconds"]["median"]) and positive(parts["paint"]["median"])
            assert all(math.isfinite(p["median"]) and math.isfinite(p["p90"]) for p in parts.values() if isinstance(p, dict))
            if record["diffusion"]:
                assert parts["unet_steps_per_paint"] == case["steps"]
                assert positive(parts["unet"]["median"]) and positive(parts["decode"]["median"])

    # Counted per image: iterations x steps x samples UNet sample-steps, twice with both guidance branches.
    per_image = defaults["iterations"] * defaults["steps"] * defaults["samples"]
    for name, branches in [("reference torch", 2), ("fast torch", 1), ("fast onnxruntime", 1)]:
        cost = by_name[name]["statistics"]["cost_per_image"]
        assert cost["networks"]["unet"]["samples"] == branches * per_image
        assert cost["networks"]["decode"]["samples"] == defaults["iterations"] * defaults["samples"]
        assert cost["all_counted"] and positive(cost["tflop"]) and by_name[name]["statistics"]["masks_repeat"]
        assert positive(by_name[name]["roofline"]["achieved_tflops"]) and "ratio" not in by_name[name]["roofline"]
    assert by_name["weight-free"]["statistics"]["cost_per_image"]["all_counted"] is False  # OpenCV's arithmetic

    extrapolated = by_name["reference torch"]["extrapolated_to_settings_steps"]
    assert extrapolated["extrapolated"] is True and extrapolated["steps"] == {"measured": defaults["steps"], "settings": 50}
    assert extrapolated["per_image"]["seconds"] > extrapolated["per_image"]["measured"]

    assert len(results["ratios"]) == len(config["ratios"])
    for ratio in results["ratios"]:
        if ratio["status"] == "ok":
            assert all(positive(v) for v in ratio["speedup"].values())
        else:
            assert ratio["status"].startswith("not available")
    assert [len(s["points"]) for s in results["scaling"]] == [len(s["values"]) for s in config["scaling"]]
    assert all(positive(p["per_image"]) for s in results["scaling"] for p in s["points"] if p["status"] == "ok")

    markdown = (out / "results.md").read_text()
    for heading in ("## Cases", "## Latency", "## Parts of an AMCP step", "## Cost per image", "## UNet step against",
                    "## Ratios", "## Scaling", "extrapolated"):
        assert heading in markdown
    assert all(name in markdown for name in by_name)
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_skipped_backends_are_recorded_with_reasons(tiny_run):
    _, out, _ = tiny_run
    results = json.loads((out / "results.json").read_text())
    tensorrt = next(r for r in results["cases"] if r["case"]["backend"] == "tensorrt")
    if importlib.util.find_spec("tensorrt") and torch.cuda.is_available():
        pytest.skip("TensorRT and CUDA are present: the tensorrt case runs here")
    assert tensorrt["status"] == "skipped" and "TensorRT" in tensorrt["skip_reason"]
    assert "## Skipped or failed" in (out / "results.md").read_text()


@pytest.mark.parametrize("name", ["cpu.yaml", "gpu.yaml", "tiny.yaml"])
def test_shipped_configs_load_and_resolve(name):
    config = load_config(REPO / "configs" / "bench" / name)
    for case in config.cases + config.sweep_cases():
        assert resolve(config, case)["model"]["amcp"]


def test_config_errors_name_the_problem(tmp_path):
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["cases"].append({"name": "no such settings", "settings": "missing"})
    config["scaling"].append({"case": "weight-free", "parameter": "steps", "values": [1]})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="settings 'missing'.*no denoising steps"):
        load_config(path)


def test_dry_run_and_work_dir_rewrite_the_config(tmp_path):
    gpu = REPO / "configs" / "bench" / "gpu.yaml"
    config = load_config(gpu)
    assert config.device == "cuda" and config.cases[0].resolution is None  # the settings' 512 px
    rehearsal = load_config(gpu, dry_run=True, work_dir=tmp_path)
    assert rehearsal.device == "cpu" and [c.name for c in rehearsal.cases] == [c.name for c in config.cases]
    assert {(c.source, c.resolution, c.steps) for c in rehearsal.cases} == {("tiny", 64, 2)}
    compiled = next(c for c in rehearsal.cases if c.backend == "torch-compile")
    assert compiled.backend_options == {"compile_backend": "eager", "compile_vae": False}  # no CUDA graphs on a CPU
    engine = rehearsal.engines["aoti-512"]
    assert engine.source == "tiny" and engine.formats == ["aoti"] and engine.out == str(tmp_path / "engines/aoti-512")
    assert rehearsal.models_dir == str(tmp_path / "models")
    with pytest.raises(ValueError, match="needs a dry_run block"):
        load_config(TINY_CONFIG, dry_run=True)


def test_an_aoti_case_needs_an_engine_with_aoti_packages(tmp_path):
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["cases"].append({"name": "fast aoti", "settings": "fast", "backend": "aoti", "engine": "tiny-64"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=r"backend aoti runs aoti exports; engine 'tiny-64' has formats \['onnx'\]"):
        load_config(path)


def test_cost_meter_counts_the_sd_unet_and_vae_per_sample():
    """At 512 px (64x64 latents) SD 1.x's UNet costs 0.80 TFLOP per sample and denoising step (the
    issue's estimate: about 0.84); FLOPs add up linearly over batches and calls."""
    from types import SimpleNamespace

    from diffusers import AutoencoderKL, UNet2DConditionModel

    from benchmarks.cost import CostMeter
    from export.random_weights import SD_INPAINT_UNET, SD_VAE

    with torch.device("meta"):
        painter = SimpleNamespace(unet_runner=None, unet=UNet2DConditionModel(**SD_INPAINT_UNET),
                                  vae=AutoencoderKL(**SD_VAE))
    meter = CostMeter(painter, features=None)
    step = ("unet", ((5, 9, 64, 64), (5,), (5, 77, 768)))
    cost = meter.cost([step, step, ("encode", ((1, 3, 512, 512),)), ("decode", ((5, 4, 64, 64),)), ("features", ((10, 3, 80, 80),))])
    unet = cost["networks"]["unet"]
    assert (unet["calls"], unet["samples"]) == (2, 10)
    assert round(unet["tflop"] / unet["samples"], 2) == 0.80
    decode = meter.flops(("decode", ((5, 4, 64, 64),)))
    assert cost["networks"]["decode"]["tflop"] == pytest.approx(5 * decode / 1e12)
    assert cost["networks"]["features"] == {"calls": 1, "samples": 10, "tflop": None} and not cost["all_counted"]
    assert cost["tflop"] == pytest.approx(sum(n["tflop"] or 0 for n in cost["networks"].values()))


def test_mask_checks_compare_pixel_for_pixel():
    from types import SimpleNamespace

    from benchmarks.suite import mask_checks, packed_mask

    disc = torch.zeros(8, 8, dtype=torch.bool)
    disc[2:6, 2:6] = True
    moved = torch.roll(disc, 1, dims=1)
    masks = {"a": [packed_mask(disc)], "b": [packed_mask(disc.clone())], "c": [packed_mask(moved)]}
    records = [{"case": {"name": name}, "status": "ok"} for name in ("a", "b", "c")] + [
        {"case": {"name": "d"}, "status": "failed"}]
    config = SimpleNamespace(mask_checks=[{"case": "b", "baseline": "a"}, {"case": "c", "baseline": "a"},
                                          {"case": "d", "baseline": "a"}])
    same, other, missing = mask_checks(config, records, masks)
    assert same["status"] == "identical" and same["images"][0]["differing_pixels"] == 0
    assert other["status"] == "differ" and other["images"][0]["differing_pixels"] == 8
    assert other["images"][0]["iou"] == pytest.approx(12 / 20)
    assert missing["status"] == "not available: d failed"


def test_a_spent_time_budget_starts_no_case(tmp_path):
    from benchmarks.suite import run_suite

    config = load_config(TINY_CONFIG, work_dir=tmp_path)
    results = run_suite(config, time_budget=0)
    assert {r["status"] for r in results["cases"]} == {"skipped"}
    assert all("time budget of 0 s was spent" in r["skip_reason"] for r in results["cases"] if r["case"]["backend"] != "tensorrt")


def test_a_case_starts_only_if_its_estimate_fits_in_the_time_left():
    from benchmarks.suite import over_budget

    assert over_budget(spent=100, budget=300, needed=150) is None
    refusal = over_budget(spent=200, budget=300, needed=150)
    assert "needs about 150 s" in refusal and "100 s of the run's time budget of 300 s were left" in refusal
    assert "was spent" in over_budget(spent=300, budget=300, needed=0)


def test_the_gpu_run_puts_the_headline_ratio_first_and_every_case_has_an_estimate():
    config = load_config(REPO / "configs/bench/gpu.yaml")
    names = [case.name for case in config.cases]
    assert names[:2] == ["reference torch float16", "fast torch float16"] and names[-1] == "fast aoti"
    assert config.ratios[0] == {"case": "fast torch float16", "baseline": "reference torch float16"}
    assert all(case.estimate_seconds > 0 for case in config.cases)
    assert all(engine.estimate_seconds > 0 for engine in config.engines.values())


def test_the_commit_needs_no_git(monkeypatch, tmp_path):
    from benchmarks.suite import COMMIT_VARIABLE, source_commit

    monkeypatch.setenv(COMMIT_VARIABLE, "abc1234")
    assert source_commit() == "abc1234"
    monkeypatch.setenv(COMMIT_VARIABLE, "")  # the file was not written: unknown, not an error
    assert source_commit() is None
    monkeypatch.delenv(COMMIT_VARIABLE)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on this PATH
    assert source_commit() is None


def test_instances_benchmark_scenes_and_one_session_give_the_one_shot_masks():
    from benchmarks.instances import scene, timed
    from paintseg_engine import AMCPConfig, Segmenter

    image, prompts = scene(16)
    boxes = [tuple(p.box) for p in prompts]
    assert image.shape == (3, 240, 320) and len(set(boxes)) == 16
    assert all(0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240 for x0, y0, x1, y1 in boxes)
    session = Segmenter(config=AMCPConfig(frame_size=64, iterations=1, num_samples=2, log_contrast=True,
                                          outpaint_region="background"))
    image, prompts = scene(2)
    seconds, one_shot = timed(image, prompts, session, one_shot=True)
    assert positive(seconds) and len(one_shot) == 2
    assert all(torch.equal(a, b) for a, b in zip(one_shot, timed(image, prompts, session, one_shot=False)[1]))
