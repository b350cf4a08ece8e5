"""Reports of a demo / optimize / export run: `results.json`, `report.md`, `report.html`.

The HTML file is self-contained (plots inlined as PNG data URIs) so it can be
mailed or attached to a CI run; the Markdown file links the PNGs in `plots/`.
Plots (matplotlib, headless): accuracy vs size vs latency of each variant, per-layer
sparsity, per-layer int8 error (when computed) and training curves.
"""

import base64
import html
import io
import json
import os

from tfmm._files import atomic_write_bytes, atomic_write_text

__all__ = ["write_report", "variants_table"]

_COLUMNS = (
    ("name", "variant", "{}"),
    ("accuracy", "accuracy", "{:.3f}"),
    ("agreement", "agrees with Keras", "{:.3f}"),
    ("size_bytes", "bytes", "{:,}"),
    ("gzip_bytes", "gzip bytes", "{:,}"),
    ("p50_ms", "p50 ms", "{:.3f}"),
)


def _cell(value, fmt):
    if value is None or value == "":
        return ""
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def variants_table(variants):
    """Return the variants as a Markdown table (one row per model / file).

    Args:
        variants: Dicts with `name` and any of `accuracy`, `agreement`,
            `size_bytes`, `gzip_bytes`, `p50_ms`.

    Returns:
        A Markdown string.

    Example:
        >>> print(variants_table([{"name": "int8", "accuracy": 0.9, "size_bytes": 1000}]))
        | variant | accuracy | agrees with Keras | bytes | gzip bytes | p50 ms |
        |---|---|---|---|---|---|
        | int8 | 0.900 |  | 1,000 |  |  |
    """
    lines = ["| " + " | ".join(title for _, title, _ in _COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for v in variants:
        lines.append("| " + " | ".join(_cell(v.get(key), fmt) for key, _, fmt in _COLUMNS) + " |")
    return "\n".join(lines)


def _plots(folder, variants, sparsity, layer_errors, history):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = {}

    def save(fig, name, caption):
        path = os.path.join(folder, f"{name}.png")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, dpi=90, format="png")
        plt.close(fig)
        atomic_write_bytes(path, buffer.getvalue())  # a killed run leaves no half plot
        made[name] = (path, caption)

    sized = [v for v in variants if v.get("size_bytes") and v.get("accuracy") is not None]
    if sized:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for v in sized:
            axes[0].scatter(v["size_bytes"] / 1024, v["accuracy"], s=40)
            axes[0].annotate(v["name"], (v["size_bytes"] / 1024, v["accuracy"]), fontsize=8)
            if v.get("p50_ms"):
                axes[1].scatter(v["p50_ms"], v["accuracy"], s=40)
                axes[1].annotate(v["name"], (v["p50_ms"], v["accuracy"]), fontsize=8)
        axes[0].set(xlabel="file size (KiB)", ylabel="test accuracy", title="accuracy vs size")
        axes[1].set(xlabel="p50 latency (ms, 1 thread)", ylabel="test accuracy", title="accuracy vs latency")
        save(fig, "tradeoff", "Accuracy against file size and latency for each variant.")
    if sparsity:
        names = list(sparsity)
        fig, ax = plt.subplots(figsize=(10, max(2.5, 0.22 * len(names))))
        ax.barh(names, [sparsity[n] for n in names])
        ax.set(xlabel="sparsity", xlim=(0, 1), title="per-layer sparsity")
        ax.tick_params(axis="y", labelsize=7)
        save(fig, "sparsity", "Fraction of zero weights in each pruned layer.")
    if layer_errors:
        top = layer_errors[:25]
        fig, ax = plt.subplots(figsize=(10, max(2.5, 0.22 * len(top))))
        ax.barh([e["tensor"][:50] for e in top], [e["error"] for e in top])
        ax.set(xlabel="RMSE / scale", title="per-tensor int8 error (largest first)")
        ax.tick_params(axis="y", labelsize=7)
        save(fig, "int8_error", "int8 error of each tensor, in units of its quantization step.")
    curves = {stage: h for stage, h in (history or {}).items() if h}
    if curves:
        fig, ax = plt.subplots(figsize=(10, 3.5))
        offset = 0
        for stage, h in curves.items():
            for metric in ("accuracy", "val_accuracy"):
                if metric in h:
                    xs = range(offset + 1, offset + 1 + len(h[metric]))
                    ax.plot(list(xs), h[metric], marker="o", label=f"{stage} {metric}")
            offset += max(len(v) for v in h.values())
        ax.set(xlabel="epoch (stages in order)", ylabel="accuracy", title="training curves")
        ax.legend(fontsize=7)
        save(fig, "training", "Accuracy per epoch of each training / fine-tuning stage.")
    return made


def write_report(
    out_dir, *, title, facts=None, variants=(), sparsity=None, layer_errors=None, history=None, extra=None
):
    """Write `results.json`, `report.md`, `report.html` and `plots/` into `out_dir`.

    Args:
        out_dir: Report folder (created).
        title: Heading of the report.
        facts: Ordered `{label: value}` shown at the top (data, model, timings).
        variants: Dicts with `name`, `accuracy`, `agreement`, `size_bytes`,
            `gzip_bytes`, `p50_ms` (any missing figure is left blank).
        sparsity: Optional `{layer: sparsity}`.
        layer_errors: Optional `[{"tensor", "op", "error"}]`, largest first.
        history: Optional `{stage: {metric: [per-epoch values]}}`.
        extra: More JSON-safe data for `results.json` only.

    Returns:
        The path of `report.html`.

    Raises:
        OSError: The folder cannot be written.

    Example:
        >>> write_report("/tmp/r", title="export", variants=[{"name": "int8", "accuracy": 0.9}])  # doctest: +SKIP
    """
    facts = dict(facts or {})
    variants = [dict(v) for v in variants]
    plots_dir = os.path.join(out_dir, "plots")
    os.makedirs(plots_dir, exist_ok=True)
    plots = _plots(plots_dir, variants, sparsity, layer_errors, history)
    results = {
        "title": title, "facts": facts, "variants": variants, "sparsity": sparsity,
        "layer_errors": layer_errors, "history": history, **(extra or {}),
    }
    atomic_write_text(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2, default=str))

    md = [f"# {title}", ""]
    md += [f"- **{k}**: {v}" for k, v in facts.items()] + [""]
    if variants:
        md += [variants_table(variants), ""]
    for name, (path, caption) in plots.items():
        md += [f"![{name}](plots/{os.path.basename(path)})", "", f"*{caption}*", ""]
    if sparsity:
        md += ["| layer | sparsity |", "|---|---|"] + [f"| {k} | {v:.3f} |" for k, v in sparsity.items()] + [""]
    atomic_write_text(os.path.join(out_dir, "report.md"), "\n".join(md))

    body = [f"<h1>{html.escape(title)}</h1>", "<ul>"]
    body += [f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in facts.items()]
    body.append("</ul>")
    if variants:
        body.append("<table><tr>" + "".join(f"<th>{t}</th>" for _, t, _ in _COLUMNS) + "</tr>")
        for v in variants:
            body.append("<tr>" + "".join(
                f"<td>{html.escape(_cell(v.get(k), f))}</td>" for k, _, f in _COLUMNS) + "</tr>")
        body.append("</table>")
    for name, (path, caption) in plots.items():
        with open(path, "rb") as f:
            data = base64.b64encode(f.read()).decode()
        body.append(f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
    path = os.path.join(out_dir, "report.html")
    atomic_write_bytes(path, page.encode())
    return path
