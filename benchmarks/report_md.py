"""`results.md`: the tables of every section, the provenance and the targets."""

from bench_raw_tfmot import _named
from common import markdown_table
from targets import p50

VARIANT_COLUMNS = ["variant", "test acc %", "agrees %", "bytes", "x f32", "gzip bytes", "gzip x f32",
                   "p50 ms 1t", "p90 ms 1t", "p50 ms 2t", "p50 ms 1t, in turns", "p50 x f32", "convert s"]


def _row(name, figures, base):
    f = figures
    return [
        name, f"{f['accuracy'] * 100:.1f}", f"{f.get('agreement', 1.0) * 100:.1f}", f"{f['size_bytes']:,}",
        f"{f['size_bytes'] / base['size_bytes']:.3f}", f"{f['gzip_bytes']:,}",
        f"{f['gzip_bytes'] / base['gzip_bytes']:.3f}", f"{f['p50_ms_1t']:.3f}", f"{f['p90_ms_1t']:.3f}",
        f"{f['p50_ms_2t']:.3f}", f"{p50(f):.3f}", f"{p50(f) / p50(base):.2f}", f"{f.get('conversion_s', '')}",
    ]


def report(results):
    parts = []
    v = results.get("variants")
    if v:
        base = v["files"]["TFLite float32"]
        rows = [["Keras float", f"{v['keras_float_accuracy'] * 100:.1f}"] + [""] * (len(VARIANT_COLUMNS) - 2)]
        rows += [_row(name, f, base) for name, f in v["files"].items()]
        epochs = ", ".join(f"{k}: {e['qat_epoch_s'] / v['float_epoch_s']:.2f}x" for k, e in v["epochs"].items())
        parts += ["## Default model (small preset, AV-digits test split)", "",
                  markdown_table(VARIANT_COLUMNS, rows), "",
                  f"Fine-tuning epoch time relative to a float training epoch ({v['float_epoch_s']:.1f} s): {epochs}.", ""]
        optimized = {k: f for k, f in v["files"].items() if "params" in f}
        if optimized:
            rows = [[k, f"{f['keras_accuracy'] * 100:.1f}", f"{f['accuracy'] * 100:.1f}", f"{f['params']:,}",
                     f"{f['sparsity']:.3f}", str(f["max_unique_values"] or "-"), f"{f['gzip_bytes']:,}",
                     f"{f['gzip_bytes'] / base['gzip_bytes']:.3f}"] for k, f in optimized.items()]
            parts += ["Optimized models (Keras accuracy before export, achieved sparsity, most unique values "
                      "in a clustered kernel):", "",
                      markdown_table(["recipe", "Keras acc %", "int8 acc %", "params", "sparsity",
                                      "max unique / kernel", "int8 gzip bytes", "gzip x f32"], rows), ""]
    if v and v.get("breakdown"):
        parts += _breakdown_report(v["breakdown"], v["files"]["TFLite float32"])
    b = results.get("branches")
    if b:
        rows = [[m, f"{r['keras_accuracy'] * 100:.1f}", f"{r['int8']['accuracy'] * 100:.1f}",
                 f"{r['float32']['size_bytes']:,}", f"{r['int8']['size_bytes']:,}",
                 f"{p50(r['float32']):.3f}", f"{p50(r['int8']):.3f}",
                 f"{p50(r['int8']) / p50(r['float32']):.2f}"] for m, r in b.items()]
        parts += ["## Single-modality models (per-branch breakdown)", "",
                  markdown_table(["branch", "Keras acc %", "int8 acc %", "f32 bytes", "int8 bytes", "f32 p50 ms",
                                  "int8 p50 ms", "int8 x f32 p50"], rows), "",
                  "p50 at 1 thread; each branch's two files timed in turns (median of 5 rounds).", ""]
    r = results.get("raw_tfmot_image")
    if r:
        rows = []
        turns = r.get("turns", {})
        for step in r["raw"]:
            mine = r["tfmm"][step["step"]]
            theirs = step.get("result") or {}
            their_p50 = turns.get(f"TFMOT {step['step']}", theirs.get("p50_ms_1t"))
            my_p50 = turns.get(f"tfmm {step['step']}", mine["p50_ms_1t"])
            rows.append([step["step"], f"{theirs['accuracy'] * 100:.1f}" if step["ok"] else "fails",
                         f"{mine['accuracy'] * 100:.1f}", f"{theirs.get('size_bytes', 0):,}" if step["ok"] else "-",
                         f"{mine['size_bytes']:,}", f"{theirs.get('gzip_bytes', 0):,}" if step["ok"] else "-",
                         f"{mine['gzip_bytes']:,}", f"{their_p50:.3f}" if step["ok"] else "-",
                         f"{my_p50:.3f}", _named(step.get("error", ""))])
        parts += ["## Image-only model: raw TFMOT documented path vs tfmm (same run)", "",
                  f"Keras float accuracy {r['keras_float_accuracy'] * 100:.1f}%; tfmm float32 file "
                  f"{r['tfmm']['float32']['size_bytes']:,} bytes, p50 "
                  f"{turns.get('tfmm float32', r['tfmm']['float32']['p50_ms_1t']):.3f} ms"
                  f"{'; all these files timed in turns (1 thread, median of 5 rounds)' if turns else ''}.", "",
                  markdown_table(["step", "TFMOT acc %", "tfmm acc %", "TFMOT bytes", "tfmm bytes", "TFMOT gzip",
                                  "tfmm gzip", "TFMOT p50 ms", "tfmm p50 ms", "TFMOT error"], rows), ""]
    f = results.get("raw_tfmot_full")
    if f:
        rows = [[s["step"], f"runs ({s['result']})" if s["ok"] else "fails", _named(s.get("error", ""))]
                for s in f["steps"]]
        parts += ["## 3-branch model: each documented TFMOT step as written", "",
                  markdown_table(["step", "raw TFMOT", "error"], rows), "",
                  "tfmm runs the same steps on this model (the variants table above).", ""]
    c = results.get("cost")
    if c:
        rows = [[p, f"{r['params']:,}", r["int8_from"], f"{r['int8_bytes']:,}" if "int8_bytes" in r else "fails",
                 f"{r['int8_p50_ms']:.3f}" if "int8_p50_ms" in r else "-", f"{r.get('export_s', '-')}",
                 f"{r['qat_epoch_s_640'] / r['float_epoch_s_640']:.2f}"] for p, r in c.items()]
        failures = [f"- {p}: {e}" for p, r in c.items() for e in r["errors"]]
        parts += ["## How cost grows (presets)", "",
                  markdown_table(["preset", "params", "int8 file from", "int8 bytes", "int8 p50 ms", "export s",
                                  "QAT / float epoch"], rows), "", *failures, "", "![cost](cost.png)", ""]
    provenance = results.get("provenance", {})
    if provenance:
        parts += ["## Provenance", "", markdown_table(["section", "command", "date"], [
            [k, f"`{v['command']}`", v["date"]] for k, v in provenance.items()]), ""]
    t = results.get("targets")
    if t:
        parts += ["## Targets", "", markdown_table(["target", "measured", "result"],
                                                   [[x["target"], x["measured"], "pass" if x["pass"] else "MISS"]
                                                    for x in t]), ""]
    return "\n".join(parts)


def _breakdown_report(d, f32):
    size = d["size"]
    base = d["int8_p50_ms"]
    rows = [[op, str(r["count"]), f"{r['p50_ms_float']:.3f}" if "p50_ms_float" in r else "fails",
             f"{r['p50_ms_float'] / base:.2f}" if "p50_ms_float" in r else r.get("error", "")]
            for op, r in sorted(d["op_float"].items(), key=lambda kv: kv[1].get("p50_ms_float", 1e9))]
    worst = [[w["tensor"][:60], w["op"], f"{w['error']:.3f}"] for w in d["worst_tensors"]]
    return [
        "### Where the int8 file's bytes and time go (PTQ int8, full integer)", "",
        f"Size: {size['file_bytes']:,} bytes = {size['weight_bytes']:,} of weights "
        f"({size['weight_bytes'] / f32['size_bytes']:.3f}x the float32 file) + {size['graph_bytes']:,} of graph "
        f"({size['ops']} ops, {size['tensors']} tensors, their shapes and quantization parameters; "
        f"{size['graph_bytes'] / f32['size_bytes']:.3f}x).", "",
        f"Latency per op type: p50 of the full-int8 file ({base:.3f} ms) with only that op type "
        "computing in float (all these files timed in turns, median of 5 rounds); a ratio below 1 means "
        "this CPU runs that op faster in float than in int8. "
        "Single ops that barely compute (NOT_EQUAL, CAST ...) show this machine's noise and the cost of "
        "the quantize / dequantize pair around a float op.", "",
        markdown_table(["op type", "ops", "p50 ms with it float", "x full int8"], rows), "",
        "Largest per-tensor int8 errors (QuantizationDebugger RMSE / scale):", "",
        markdown_table(["tensor", "op", "error"], worst), "",
    ]
