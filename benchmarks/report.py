"""Write a run's results: results.json (everything, raw runs included), results.md (tables), latency.png."""
from __future__ import annotations

import json
from pathlib import Path

from .suite import STEPS

STEP_NAMES = {"inpaint": "I-step", "outpaint": "O-step"}
# Stacked in the plot, in the order a step runs them.
PLOT_PARTS = ("encode", "unet", "decode", "paint_other", "features", "update")
PART_COLORS = {name: f"C{i}" for i, name in enumerate((*PLOT_PARTS, "paint"))}


# Networks of the cost table, in the order a step calls them, and what one sample of each is.
COST_NETWORKS = {"encode": "VAE encodes", "unet": "UNet sample-steps", "decode": "VAE decodes",
                 "features": "features forwards"}


def write_results(results: dict, out: Path, figure: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(markdown(results))
    if figure:
        plot(results, out / "latency.png")


# --- Markdown ---------------------------------------------------------------------------------


def table(header: list[str], rows: list[list]) -> list[str]:
    cells = lambda row: " | ".join(str(cell).replace("|", "\\|") for cell in row)
    return [f"| {cells(header)} |", "|" + "---|" * len(header), *(f"| {cells(row)} |" for row in rows), ""]


def seconds(summary: dict | None) -> str:
    return "—" if summary is None else f"{summary['median']:.3f} ({summary['p90']:.3f})"


def labelled(record: dict, name: str, value) -> str:
    """A setting's value, with the settings' own value where the case changed it."""
    changed = record["changed"].get(name)
    return f"**{value}** (settings: {changed['settings']})" if changed else str(value)


def weights(record: dict) -> str:
    if not record["diffusion"]:
        return "none (weight-free)"
    return {"random_full_size": "random, full-size", "tiny": "random, tiny"}.get(record["case"]["source"],
                                                                                 record["case"]["source"])


def features_label(record: dict) -> str:
    features = record["settings"]["features"]
    name = features["class_path"].rsplit(".", 1)[1]
    size = features["init_args"].get("input_size")
    return f"{name} at " + labelled(record, "features_input_size", size) + " px" if size else name


def case_rows(results: dict) -> list[list]:
    rows = []
    for record in results["cases"]:
        case, model = record["case"], record["settings"]
        painter, amcp = model["painter"]["init_args"], model["amcp"]
        stats = record.get("statistics", {}).get("per_step", {})
        batch = next((parts["unet_batch"] for parts in stats.values() if "unet_batch" in parts), None)
        diffusion = record["diffusion"]
        rows.append([
            case["name"], model["painter"]["class_path"].rsplit(".", 1)[1], weights(record), case["settings"],
            case["backend"] if diffusion else "—", painter.get("dtype", "float32") if diffusion else "—",
            labelled(record, "resolution", amcp.get("frame_size", 512)), labelled(record, "samples", amcp.get("num_samples", 5)),
            f"{painter['scheduler']} " + labelled(record, "steps", painter["steps"]) if diffusion else "—",
            f"{'both branches' if batch == 2 * amcp.get('num_samples', 5) else 'one pass'} (batch {batch})"
            if batch else "—",
            labelled(record, "iterations", amcp.get("iterations", 5)), features_label(record),
            f"{case['repeats']} x {len(record['runs']) // max(1, case['repeats'])} (warm-up {case['warmup']})"
            if record["status"] == "ok" else "—",
            record["status"]])
    return rows


def markdown(results: dict) -> str:
    machine = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    ok = [r for r in results["cases"] if r["status"] == "ok"]
    lines = [
        f"# Benchmark: {results['date'][:10]}, {results['machine_tag']}", "",
        f"- Machine: {machine['cpu']}, {machine['cpu_cores']} cores, {machine['memory_gib']:.0f} GiB; "
        f"GPU: {machine['gpu'] or 'none'}; torch threads {machine['torch_threads']}; device `{machine['device']}`",
        f"- Load average (1, 5, 15 min) at start {fmt_load(results['load_average_at_start'])}, at end "
        f"{fmt_load(results['load_average_at_end'])}: other jobs shared the machine when these are well above 0.",
        f"- Versions: python {machine['python']}, {versions}; commit {machine['git_commit']}",
        f"- Config: `{results['config_file']}`; run took {results['wall_seconds'] / 60:.1f} min",
        "- **Weights**: every diffusion case ran **random weights** (full-size or tiny architectures, see "
        "*weights*): latency does not depend on weight values, but the masks are meaningless.",
        "- Values in **bold** differ from the settings' own (in parentheses), e.g. to fit this machine; "
        "nothing below is scaled back to the settings unless marked *extrapolated*.",
        "- Times in seconds: median (p90) over repeats x images, warm-up excluded; each case in a fresh process.",
        "",
        "## Cases", "",
        *table(["case", "painter", "weights", "settings", "backend", "dtype", "frame px", "samples", "steps",
                "guidance (UNet batch)", "iterations", "features", "repeats x images", "status"], case_rows(results)),
        "## Latency", "",
        "*load*: the 1-minute load average as the case started; *cores busy*: the case process's CPU seconds "
        "per wall second over its timed runs. Cores busy well under the torch threads, or load well over "
        "the cores, mean other jobs took the cores and slowed the case down.", "",
        *table(["case", "I-step", "O-step", "per image", "images/s", "peak memory (MiB)", "load", "cores busy"], [
            [r["case"]["name"], *(seconds(r["statistics"]["per_step"].get(s, {}).get("seconds")) for s in STEPS),
             seconds(r["statistics"]["per_image"]), f"{r['statistics']['images_per_second']:.3f}", memory(r["peak_memory"]),
             f"{r['load_average_at_start'][0]:.2f}", f"{r['cores_busy']:.2f}"]
            for r in ok]),
        "## Parts of an AMCP step", "",
        "Medians; *UNet* is all denoising steps of the step's one paint call (steps x median per step). "
        "*paint other*: scheduler, masks, resizing inside the paint call.", "",
        *table(["case", "step", "paint", "VAE encode", "UNet", "VAE decode", "paint other", "features", "update", "total"],
               [parts_row(r, s) for r in ok for s in STEPS if s in r["statistics"]["per_step"]]),
        "## Cost per image (machine-independent)", "",
        "Counted in the timed runs at the painter's runners and the feature extractor: samples through each "
        "network per image (a UNet call on a batch of 5 is 5 sample-steps), and the TFLOPs they add up to at "
        "the case's sizes (PyTorch's FLOP counter on the same architectures on the meta device: matrix "
        "products, convolutions, attention). The weight-free painter's and features' arithmetic is not "
        "counted (—). *masks repeat*: every repeat of an image gave the same mask.", "",
        *table(["case", *(f"{name} (calls)" for name in COST_NETWORKS.values()), "TFLOP per image", "masks repeat"],
               [cost_row(r) for r in ok]),
    ]
    rooflines = [r for r in ok if r.get("roofline")]
    if rooflines:
        lines += ["## UNet step against the roofline", "",
                  "The median UNet call (one denoising step of all samples) against its counted TFLOPs at the "
                  "GPU's dense tensor-core peak for the case's dtype (`peak_tflops` of the config; none for "
                  "CPUs or float32): *ratio* = measured / roofline, 1 at the peak.", "",
                  *table(["case", "dtype", "batch", "TFLOP per step", "median step (s)", "achieved TFLOP/s",
                          "peak TFLOP/s", "roofline (s)", "ratio"], [roofline_row(r) for r in rooflines])]
    extrapolated = [r for r in ok if "extrapolated_to_settings_steps" in r]
    if extrapolated:
        lines += ["## Extrapolated to the settings' denoising steps", "",
                  "**Estimates, not measurements**: measured median + (settings steps - measured steps) x measured "
                  "median UNet step. Only the step count is extrapolated; frame size, iterations and features stay "
                  "as measured.", "",
                  *table(["case", "steps measured -> settings", "median UNet step", "I-step measured -> extrapolated",
                          "O-step measured -> extrapolated", "per image measured -> extrapolated"], [
                      [r["case"]["name"], f"{e['steps']['measured']} -> {e['steps']['settings']}", f"{e['unet_step_median']:.3f}",
                       *(f"{e[s]['measured']:.2f} -> {e[s]['seconds']:.1f}" if s in e else "—" for s in STEPS),
                       f"{e['per_image']['measured']:.2f} -> {e['per_image']['seconds']:.1f}"]
                      for r in extrapolated for e in [r["extrapolated_to_settings_steps"]]])]
    if results["ratios"]:
        lines += ["## Ratios (both sides measured in this run)", "", "Speed-up = baseline seconds / case seconds (medians).", "",
                  "*TFLOP ratio*: the baseline's counted TFLOPs per image over the case's, what the case "
                  "skips on any machine; speed-up over TFLOP ratio is how much faster each FLOP runs.", "",
                  *table(["case", "baseline", "per image", "I-step", "O-step", "per image at settings' steps",
                          "TFLOP ratio"], [
                      [p["case"], p["baseline"], *ratio_cells(p),
                       f"{p['tflop_ratio']:.2f}x" if "tflop_ratio" in p else "—"] for p in results["ratios"]])]
    if results.get("mask_checks"):
        lines += ["## Masks of the exact cuts against the reference path", "",
                  "Each pair ran the same images at the same precision; the masks must be identical, pixel for "
                  "pixel (first repeat of each image).", "",
                  *table(["case", "baseline", "result", "per image"], [
                      [c["case"], c["baseline"], c["status"], "; ".join(
                          f"image {i['image']}: " + ("identical" if i["identical"] else
                                                     f"{i['differing_pixels']} of {i['pixels']} px differ, "
                                                     f"IoU {i['iou']:.4f}")
                          for i in c.get("images", []))] for c in results["mask_checks"]])]
    for sweep in results["scaling"]:
        lines += [f"## Scaling: {sweep['parameter']} ({sweep['case']})", "",
                  *table([sweep["parameter"], "per image", "I-step", "O-step", "status"], [
                      [p["value"], *(f"{p[k]:.3f}" if k in p else "—" for k in ("per_image", *STEPS)), p["status"]]
                      for p in sweep["points"]])]
    not_run = [r for r in results["cases"] if r["status"] != "ok"]
    if not_run:
        lines += ["## Skipped or failed", "", *table(["case", "status", "reason"], [
            [r["case"]["name"], r["status"], r.get("skip_reason") or r.get("error")] for r in not_run])]
    lines += ["![latency per AMCP step and scaling](latency.png)", ""]
    return "\n".join(lines)


def fmt_load(load) -> str:
    return ", ".join(f"{x:.2f}" for x in load)


def memory(peak: dict) -> str:
    text = f"{peak['cpu_max_rss_mib']:.0f} RSS"
    return text + (f", {peak['cuda_max_allocated_mib']:.0f} CUDA" if "cuda_max_allocated_mib" in peak else "")


def parts_row(record: dict, step: str) -> list:
    parts = record["statistics"]["per_step"][step]
    cell = lambda name: f"{parts[name]['median']:.3f}" if name in parts else "—"
    unet = (f"{parts['unet']['median']:.3f} ({parts['unet_steps_per_paint']} x {parts['unet_step']['median']:.3f})"
            if "unet" in parts else "—")
    return [record["case"]["name"], STEP_NAMES[step], cell("paint"), cell("encode"), unet, cell("decode"),
            cell("paint_other"), cell("features"), cell("update"), cell("seconds")]


def cost_row(record: dict) -> list:
    cost = record["statistics"]["cost_per_image"]
    cells = []
    for network in COST_NETWORKS:
        counted = cost["networks"].get(network)
        cells.append(f"{counted['samples']:g} ({counted['calls']:g})" if counted else "—")
    return [record["case"]["name"], *cells, f"{cost['tflop']:.4g}" if cost["all_counted"] else
            (f"{cost['tflop']:.4g} + —" if cost["tflop"] else "—"),
            "yes" if record["statistics"]["masks_repeat"] else "**no**"]


def roofline_row(record: dict) -> list:
    r = record["roofline"]
    peak = f"{r['peak_tflops']:g} ({r['gpu']})" if r["peak_tflops"] else "—"
    return [record["case"]["name"], r["dtype"], f"{r['batch']:g}", f"{r['unet_step_tflop']:.4g}",
            f"{r['unet_step_seconds']:.4g}", f"{r['achieved_tflops']:.4g}", peak,
            f"{r['roofline_seconds']:.4g}" if "ratio" in r else "—", f"{r['ratio']:.2f}" if "ratio" in r else "—"]


def ratio_cells(ratio: dict) -> list[str]:
    if ratio["status"] != "ok":
        return [ratio["status"], "", "", ""]
    speedup = ratio["speedup"]
    cells = [f"{speedup[k]:.2f}x" if k in speedup else "—" for k in ("per_image", *STEPS)]
    at_settings = ratio.get("speedup_at_settings_steps")
    return cells + [f"{at_settings['per_image']:.2f}x (extrapolated)" if at_settings else "—"]


# --- Plot -------------------------------------------------------------------------------------


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    ok = [r for r in results["cases"] if r["status"] == "ok" and not r["case"]["sweep"]]
    sweeps = [s for s in results["scaling"] if any("per_image" in p for p in s["points"])]
    bars = [(f"{r['case']['name']} {STEP_NAMES[s]}", r["statistics"]["per_step"][s])
            for r in ok for s in STEPS if s in r["statistics"]["per_step"]]
    figure, axes = plt.subplots(1 + len(sweeps), 1, figsize=(10, 1.5 + 0.35 * len(bars) + 3 * len(sweeps)),
                                gridspec_kw={"height_ratios": [max(2, 0.35 * len(bars))] + [3] * len(sweeps)},
                                squeeze=False)
    ax = axes[0, 0]
    drawn = set()
    for index, (_, parts) in enumerate(bars):
        left = 0.0
        # A weight-free painter has no UNet/VAE parts: its paint time is one part.
        for name in PLOT_PARTS if "unet" in parts else ("paint", "features", "update"):
            ax.barh(index, parts[name]["median"], left=left, color=PART_COLORS[name],
                    label=None if name in drawn else name)
            drawn.add(name)
            left += parts[name]["median"]
        ax.text(left, index, f" {parts['seconds']['median']:.2f} s", va="center", fontsize=7)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_yticks(range(len(bars)), [name for name, _ in bars], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds per AMCP step (median)")
    ax.set_title(f"{results['machine_tag']}, {results['date'][:10]}: parts of an AMCP step", fontsize=9)
    for ax, sweep in zip(axes[1:, 0], sweeps):
        points = [p for p in sweep["points"] if "per_image" in p]
        values = [p["value"] for p in points]
        for key, label in (("per_image", "per image"), *STEP_NAMES.items()):
            if all(key in p for p in points):
                ax.plot(values, [p[key] for p in points], marker="o", label=label)
        ax.set_xlabel(sweep["parameter"])
        ax.set_ylim(bottom=0)
        ax.set_ylabel("seconds (median)")
        ax.set_title(f"scaling: {sweep['parameter']} ({sweep['case']})", fontsize=9)
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
