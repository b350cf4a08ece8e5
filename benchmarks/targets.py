"""The benchmark targets, pass / miss, computed from `results.json` (also by `--report-only`)."""

import numpy as np
from common import mcnemar_p


def p50(figures):
    """The 1-thread p50 timed in turns with the files it is compared to, else the one-off p50."""
    return figures.get("p50_ms_1t_turns", figures["p50_ms_1t"])


def targets(results):
    v = results.get("variants")
    if not v:
        return []
    files = v["files"]
    f32 = files["TFLite float32"]
    int8 = files["PTQ int8 (full integer)"]
    best_int8_acc = max(files[k]["accuracy"] for k in ("PTQ int8 (full integer)", "QAT int8"))
    pq = files["prune 75% + PQAT int8"]
    latency = files["PTQ int8 prefer=latency"]
    qat_ratio = v["epochs"]["QAT int8"]["qat_epoch_s"] / v["float_epoch_s"]
    rows = [
        ("int8 accuracy >= Keras float - 1.0 pt (goal -0.5)",
         f"{(best_int8_acc - v['keras_float_accuracy']) * 100:+.2f} pt", best_int8_acc >= v["keras_float_accuracy"] - 0.01),
        ("int8 file <= 0.27x float32", f"{int8['size_bytes'] / f32['size_bytes']:.3f}x",
         int8["size_bytes"] <= 0.27 * f32["size_bytes"]),
        ("prune 75% + int8 gzip <= 0.10x float32 gzip", f"{pq['gzip_bytes'] / f32['gzip_bytes']:.3f}x",
         pq["gzip_bytes"] <= 0.10 * f32["gzip_bytes"]),
        ("latency-aware int8 p50 <= 0.5x float32 (1 thread)",
         f"{p50(latency) / p50(f32):.2f}x (full integer: {p50(int8) / p50(f32):.2f}x)",
         p50(latency) <= 0.5 * p50(f32)),
        ("QAT epoch <= 1.5x float epoch", f"{qat_ratio:.2f}x", qat_ratio <= 1.5),
    ]
    rows += _raw_targets(results)
    return [{"target": t, "measured": m, "pass": bool(p)} for t, m, p in rows]


def _raw_targets(results):
    """tfmm >= raw TFMOT, figure by figure, on each step raw TFMOT completes (image-only model).

    Accuracy misses when TFMOT's file is more accurate and the split of the
    examples only one file gets right is unlikely under equal accuracy
    (exact McNemar p < 0.05); latency misses when tfmm's file is slower in
    every round of the timing in turns; sizes are compared as they are.
    """
    raw = results.get("raw_tfmot_image")
    rows = []
    if raw:
        works = [r for r in raw["raw"] if r["ok"]]
        paired = raw.get("paired", {})
        acc = []
        for r in works:
            delta = raw["tfmm"][r["step"]]["accuracy"] - r["result"]["accuracy"]
            pair = paired.get(r["step"])
            p = mcnemar_p(pair["tfmm_only"], pair["tfmm_only_wrong"]) if pair else (1.0 if delta >= 0 else 0.0)
            acc.append((delta, p, r["step"], pair))
        delta, p, step, pair = min(acc)
        detail = (f"{pair['tfmm_only']} vs {pair['tfmm_only_wrong']} of {pair['examples']} examples only one gets "
                  f"right, McNemar p={p:.2f}" if pair else "strict")
        rows.append(("tfmm >= raw TFMOT, accuracy (image-only; miss if TFMOT better at McNemar p < 0.05)",
                     f"worst {delta * 100:+.1f} pt ({step}: {detail})", all(d >= 0 or q >= 0.05 for d, q, _, _ in acc)))
        sizes = {key: max(raw["tfmm"][r["step"]][key] / r["result"][key] for r in works)
                 for key in ("size_bytes", "gzip_bytes")}
        rows.append(("tfmm >= raw TFMOT, file and gzip size (image-only, each step)",
                     f"worst {sizes['size_bytes']:.3f}x bytes, {sizes['gzip_bytes']:.3f}x gzip",
                     max(sizes.values()) <= 1.0))
        rounds = raw.get("turns_rounds", {})
        slower = []
        for r in works:
            mine, theirs = rounds.get(f"tfmm {r['step']}"), rounds.get(f"TFMOT {r['step']}")
            if mine and theirs:
                ratios = [a / b for a, b in zip(mine, theirs)]
                slower.append((float(np.median(ratios)), sum(x > 1 for x in ratios), len(ratios), r["step"]))
        if slower:
            ratio, k, n, step = max(slower)
            rows.append(("tfmm >= raw TFMOT, p50 latency (image-only, in turns; miss if slower in every round)",
                         f"worst {ratio:.3f}x ({step}: slower in {k} of {n} rounds)",
                         all(k < n for _, k, n, _ in slower)))
    full = results.get("raw_tfmot_full")
    variants = results.get("variants")
    if full and variants:
        failing = sum(not s["ok"] for s in full["steps"])
        int8 = sum("int8" in k for k in variants["files"])
        rows.append(("a result where raw TFMOT fails (3-branch model)",
                     f"raw TFMOT fails {failing} of {len(full['steps'])} documented steps; "
                     f"tfmm writes {int8} verified int8 files", int8 > 0 and failing > 0))
    return rows
