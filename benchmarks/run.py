"""`make bench`: tfmm's figures side by side with raw TFMOT and the targets.

Usage: python benchmarks/run.py [--epochs 10] [--qat-epochs 2] [--quick]

Writes `benchmarks/results/results.json`, `results.md` and plots. Sections:
variants of the default model (Keras float, float32, dynamic, float16, PTQ int8,
int8 prefer=latency, QAT int8, prune 75% + PQAT int8), single-modality models
(the per-branch breakdown), the raw TFMOT path on an image-only model and on the
3-branch model, how cost grows with the presets, and pass / miss per target.
These are benchmarks, not tests: the machine is noisy, so every ratio below is
measured within one run.
"""

import argparse
import json
import os
import tempfile
import time
import traceback

import tfmm  # noqa: F401  (first: selects Keras 2)
from bench_branches import section_branches
from bench_cost import plot_cost, section_cost
from bench_raw_tfmot import section_raw_tfmot_full, section_raw_tfmot_image
from bench_variants import section_variants
from common import RESULTS, machine, write
from report_md import report
from targets import targets


SECTIONS = {
    "variants": section_variants,
    "branches": section_branches,
    "raw_tfmot_image": section_raw_tfmot_image,
    "raw_tfmot_full": section_raw_tfmot_full,
    "cost": section_cost,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--qat-epochs", type=int, default=2)
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 QAT epoch: a smoke run")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite results.md and the targets from results.json without measuring")
    args = parser.parse_args()
    if args.report_only:
        with open(os.path.join(RESULTS, "results.json")) as f:
            results = json.load(f)
        # the figures keep the machine and command that measured them; only the rendering is new
        results["targets"] = targets(results)
        print(write("results", results, report(results)))
        return
    if args.quick:
        args.epochs, args.qat_epochs = 2, 1
    results = {"epochs": args.epochs, "qat_epochs": args.qat_epochs}
    sections = args.sections.split(",")
    previous = os.path.join(RESULTS, "results.json")
    if set(sections) != set(SECTIONS) and os.path.exists(previous):
        # A partial run updates its sections and keeps the others (each says which command made it).
        with open(previous) as f:
            kept = json.load(f)
        results.update({k: v for k, v in kept.items() if k in SECTIONS or k == "provenance"})
    results.setdefault("provenance", {})
    with tempfile.TemporaryDirectory() as tmp:
        for name in sections:
            results.pop(name + "_error", None)
            results["provenance"][name] = machine()
            start = time.perf_counter()
            try:
                results[name] = SECTIONS[name](args, tmp)
            except Exception:
                results[name + "_error"] = traceback.format_exc()
                print(traceback.format_exc(), flush=True)
            print(f"== {name}: {time.perf_counter() - start:.0f} s", flush=True)
    results["targets"] = targets(results)
    os.makedirs(RESULTS, exist_ok=True)
    if results.get("cost"):
        plot_cost(results["cost"])
    print(write("results", results, report(results)))


if __name__ == "__main__":
    main()
