"""Copy the benchmark tables from benchmarks/results/results.md into README.md.

Usage: python benchmarks/readme_tables.py   (after `make bench`)
"""

import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

md = open(os.path.join(ROOT, "benchmarks", "results", "results.md")).read()
header = md.split("\n\n", 1)[0]


def section(title):
    m = re.search(r"## " + re.escape(title) + r"\n\n(.*?)(?=\n## |\Z)", md, re.S)
    return m.group(1).strip() if m else ""


def p50(figures):
    """1-thread p50 timed in turns with the files it is compared to (older results: the one-off p50)."""
    return figures.get("p50_ms_1t_turns", figures["p50_ms_1t"])


def commentary():
    """The paragraph under the targets, with its figures read from results.json."""
    results = json.load(open(os.path.join(ROOT, "benchmarks", "results", "results.json")))
    files = results["variants"]["files"]
    f32 = files["TFLite float32"]
    ratio = lambda f, key="size_bytes": f[key] / f32[key]  # noqa: E731
    branches = {name: p50(b["int8"]) / p50(b["float32"]) for name, b in results["branches"].items()}
    qat, ptq = files["QAT int8"], files["PTQ int8 (full integer)"]
    breakdown = results["variants"]["breakdown"]
    size = breakdown["size"]

    def _why():
        timed = {op: r["p50_ms_float"] / breakdown["int8_p50_ms"] for op, r in breakdown["op_float"].items()
                 if "p50_ms_float" in r}
        op = min(timed, key=timed.get)
        return (f" Per op type (breakdown table), {op} is where float wins most: with only the "
                f"{breakdown['op_float'][op]['count']} {op} ops in float the int8 file runs at {timed[op]:.2f}x "
                "its full-integer p50.")

    return (
        "What the misses say: each branch alone, int8 p50 is "
        + ", ".join(f"{name} {r:.2f}x" for name, r in branches.items())
        + " its float32 file's (the text branch wins because the unrolled int8 LSTM beats the fused float "
        "one; on these x86 cores XNNPACK's float kernels hold their own for our small convolutions), and "
        f"the full int8 model is {p50(ptq) / p50(f32):.2f}x float32; int8 pays off in size and "
        f"on NPUs / microcontrollers.{_why()} The int8 file is {ratio(ptq):.3f}x float32 "
        f"({size['weight_bytes'] / f32['size_bytes']:.3f}x of it weights, the rest the graph of {size['ops']} ops, "
        "most of them the unrolled LSTM's steps; see the export section; with per-channel dense weights it is "
        f"{ratio(files['PTQ int8, per-channel dense']):.3f}x); after "
        f"75% pruning, gzip reaches {ratio(files['prune 75% + PQAT int8'], 'gzip_bytes'):.3f}x because the "
        "graph does not compress and the masked Embedding stays dense (the LSTM's kernels are pruned like "
        "the rest). QAT int8 p50 is "
        f"{p50(qat) / p50(ptq):.2f}x PTQ int8's (every BatchNormalization is folded, after Conv2D by "
        "TFMOT and after Conv1D by tfmm, so both files have the same ops). A QAT epoch took "
        f"{results['variants']['epochs']['QAT int8']['qat_epoch_s'] / results['variants']['float_epoch_s']:.2f}x "
        "a float epoch in the variants section and "
        f"{results['cost']['small']['qat_epoch_s_640'] / results['cost']['small']['float_epoch_s_640']:.2f}x in the "
        f"cost section of the same run (640 examples).{_raw_latency()} Latency ratios compare files timed in turns "
        "within one run on a shared 2-core machine: compare ratios, not absolute times across runs.\n"
    )


def _raw_latency():
    """How far apart raw TFMOT's and tfmm's PTQ int8 image files run (focused study), when it was run."""
    path = os.path.join(ROOT, "benchmarks", "results", "interleaved_latency.json")
    if not os.path.exists(path):
        return ""
    study = json.load(open(path))
    raw, mine = "raw TFMOT (from_keras_model, int8 I/O)", "tfmm export_tflite (int8)"
    same = "the same ops" if study["ops"][raw] == study["ops"][mine] else "different ops"
    n = len(study["rounds"][mine])
    return (f" Raw TFMOT's and tfmm's PTQ int8 image files have {same} and int8 I/O; in the focused "
            f"study (`python benchmarks/interleaved_latency.py`, {n} rounds in turns, {study['machine']['date']}) "
            f"tfmm's runs at {study['medians'][mine] / study['medians'][raw]:.3f}x raw's p50, slower in "
            f"{study['slower_rounds'][mine]} of {n} rounds; so the bench's latency rows (worst {_raw_gap():.2f}% "
            "apart) compare files that run alike, and a miss there is this machine's noise, not the files'.")


def _raw_gap():
    """Largest p50 gap in % between a tfmm file and raw TFMOT's for the same step in make bench."""
    results = json.load(open(os.path.join(ROOT, "benchmarks", "results", "results.json")))
    turns = results["raw_tfmot_image"]["turns"]
    steps = [r["step"] for r in results["raw_tfmot_image"]["raw"] if r["ok"]]
    return max(abs(turns[f"tfmm {s}"] / turns[f"TFMOT {s}"] - 1) for s in steps) * 100


block = f"""## Results

Copied from `benchmarks/results/results.md`, made by `make bench`
(`python benchmarks/run.py`: small preset, 10 epochs, 2 QAT epochs, AV-digits test split,
LiteRT with XNNPACK; p50 / p90 of 300 runs per file, and the files each ratio compares timed
again in turns, 5 rounds, so the machine's drift leaves the ratios; see its provenance table).

{section("Default model (small preset, AV-digits test split)")}

Per branch (each modality alone):

{section("Single-modality models (per-branch breakdown)")}

Raw TFMOT's documented path next to tfmm on the image-only model (same run):

{section("Image-only model: raw TFMOT documented path vs tfmm (same run)")}

How cost grows with the preset (640 examples; int8 file of the QAT model):

{section("How cost grows (presets)").replace("![cost](cost.png)", "![cost](benchmarks/results/cost.png)")}

Targets from the benchmark issue:

{section("Targets")}

{commentary()}
"""

readme = open(os.path.join(ROOT, "README.md")).read()
start = readme.find("## Results\n")
if start >= 0:
    end = readme.index("\n## ", start + 5) + 1
    readme = readme[:start] + block + readme[end:]
else:
    at = readme.index("## Command line")
    readme = readme[:at] + block + readme[at:]
open(os.path.join(ROOT, "README.md"), "w").write(readme)
print(header)
