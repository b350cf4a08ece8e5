"""The `tfmm` command line.

Exit codes: 0 success, 2 bad usage or configuration, 1 any other failure.
"""

import argparse
import os
import signal
import sys

__all__ = ["main"]


def _import_stack(verbose):
    from tfmm._quiet import native_stderr_captured

    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow prints CUDA probes at import and at first device use.
    with native_stderr_captured(not verbose):
        import tensorflow as tf

        import tfmm.models  # noqa: F401

        tf.config.list_physical_devices()  # the CUDA probe logs on first device use
    if not verbose:
        tf.get_logger().setLevel("ERROR")


def _cmd_demo(args):
    from tfmm.demo import run_demo

    results = run_demo(
        args.out, quick=args.quick, epochs=args.epochs, seed=args.seed, limit=args.limit,
        verbose=0 if args.quiet else 2,
    )
    rows = [
        ("data", results["data"]),
        ("model", f"{results['preset']} preset, {results['params']:,} parameters"),
        ("train / test examples", f"{results['train_examples']} / {results['test_examples']}"),
        ("epochs", str(results["epochs"])),
        ("test accuracy (Keras float)", f"{results['test_accuracy']:.3f}"),
        ("wall time", f"{results['seconds']} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\ntfmm demo")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    print()
    print(_variants_table(results["variants"], results["test_accuracy"]))
    print(f"\nModel, TFLite files, vocabulary and results.json written to {os.path.abspath(args.out)}")
    return 0


def _variants_table(variants, keras_accuracy):
    """One line per exported file: accuracy, agreement, sizes, latency (medians, one run)."""
    float32 = next(v for v in variants if v["mode"] == "float32")
    header = f"  {'variant':<16} {'accuracy':>9} {'agreement':>10} {'size':>10} {'gzip':>10} {'p50 ms':>8} {'vs f32':>7}"
    lines = [header, f"  {'keras':<16} {keras_accuracy:>9.3f} {'':>10} {'':>10} {'':>10} {'':>8} {'':>7}"]
    for v in variants:
        lines.append(
            f"  {v['mode']:<16} {v['test_accuracy']:>9.3f} {v['agreement']:>10.3f} "
            f"{v['size_bytes']:>10,} {v['gzip_bytes']:>10,} {v['p50_ms']:>8.3f} "
            f"{v['p50_ms'] / float32['p50_ms']:>6.2f}x"
        )
    return "\n".join(lines)


def _build_parser():
    from tfmm import __version__

    parser = argparse.ArgumentParser(
        prog="tfmm",
        description="Multimodal Keras models to small, fast, verified int8 TFLite files.",
    )
    parser.add_argument("--version", action="version", version=f"tfmm {__version__}")
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's own log output"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="train the default multimodal model end to end")
    demo.add_argument("--out", default="tfmm-demo", help="output folder (default: tfmm-demo)")
    demo.add_argument("--quick", action="store_true", help="small data, one epoch")
    demo.add_argument("--epochs", type=_positive_int, default=None, help="training epochs")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--quiet", action="store_true", help="no progress output")
    demo.add_argument("--limit", type=_positive_int,
                      help="use only the first N examples of each split (smoke runs)")
    demo.set_defaults(func=_cmd_demo)

    from tfmm import commands
    from tfmm._choices import MODES, PREFERENCES, RNN_LAYOUTS, STRATEGIES

    def data_options(p):
        p.add_argument("--data", default="av-digits",
                       help="'av-digits' (bundled, default) or a labelled CSV / JSONL manifest")
        p.add_argument("--validation-data", help="manifest of the validation split (default: 10%% of --data)")
        p.add_argument("--test-data", help="manifest of the test split (default: another 10%% of --data)")
        p.add_argument("--sample-rate", type=_positive_int, default=8000, help="audio rate of manifests")
        p.add_argument("--quiet", action="store_true", help="no progress output")
        p.add_argument("--limit", type=_positive_int,
                       help="use only the first N examples of each split (smoke runs)")
        p.add_argument("--allow-outside", action="store_true",
                       help="let manifests name files outside their own folder (trusted manifests only)")

    def unsafe_option(p):
        p.add_argument("--unsafe-load", action="store_true",
                       help="load models whose file can run code (Lambda layers) or fetch URLs (hub handles); "
                            "only for files you trust")

    train = sub.add_parser("train", help="build a model from a YAML config (or preset) and train it")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--config", help="YAML file mapping to tfmm.models.MultimodalConfig")
    source.add_argument("--preset", default="small", choices=("tiny", "small", "base"),
                        help="named config when --config is not given (default: small)")
    data_options(train)
    train.add_argument("--modalities", help="comma-separated subset of image,text,audio (presets only)")
    train.add_argument("--epochs", type=_positive_int, default=10, help="training epochs (default: 10)")
    train.add_argument("--batch-size", type=_positive_int, default=32)
    train.add_argument("--learning-rate", type=_positive_float, default=1e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default="model.keras", help="where the model goes (default: model.keras)")
    train.add_argument("--json", action="store_true", help="also print the figures as JSON")
    train.set_defaults(func=commands.cmd_train)

    optimize = sub.add_parser("optimize", help="prune + QAT (or any recipe) a trained model")
    optimize.add_argument("--model", required=True, help="a .keras / .tfmm / .h5 model from `tfmm train`")
    unsafe_option(optimize)
    optimize.add_argument("--recipe", help="YAML recipe (default: prune 75%% + sparsity-preserving QAT)")
    data_options(optimize)
    optimize.add_argument("--vocabulary", help="tokenizer JSON (default: <model>.vocab.json)")
    optimize.add_argument("--epochs", type=_positive_int, help="override every stage's epochs")
    optimize.add_argument("--seed", type=int, default=0)
    optimize.add_argument("--out", default="optimized.tfmm",
                          help="default: optimized.tfmm (tfmm's safe format; QAT models do not load from .keras)")
    optimize.add_argument("--resume", action="store_true",
                          help="continue an interrupted run from <out>.checkpoint (same recipe)")
    optimize.add_argument("--report", help="report folder (default: <out>-optimize-report)")
    optimize.add_argument("--strategy", default="none", choices=STRATEGIES,
                          help="tf.distribute strategy: 'mirrored' (local devices) or 'multi-worker' "
                               "(run one process per worker, each with its TF_CONFIG; worker 0 writes "
                               "the outputs). Default: none")
    optimize.set_defaults(func=commands.cmd_optimize)

    export = sub.add_parser("export", help="convert to TFLite, verify, time and report")
    export.add_argument("--model", required=True, help="a .keras / .tfmm / .h5 model (float, pruned or QAT)")
    unsafe_option(export)
    export.add_argument("--quantization", default="int8", choices=MODES, help="default: int8")
    data_options(export)
    export.add_argument("--vocabulary", help="tokenizer JSON (default: <model>.vocab.json)")
    export.add_argument("--prefer", default="size", choices=PREFERENCES,
                        help="int8: 'latency' keeps float the ops that run faster in float here")
    export.add_argument("--max-accuracy-drop", type=_fraction,
                        help="int8: keep the worst tensors float until the loss is within this fraction")
    export.add_argument("--rnn-layout", choices=RNN_LAYOUTS, help="fused or unrolled RNNs")
    export.add_argument("--layer-errors", action="store_true",
                        help="int8: measure each tensor's quantization error and plot it in the report")
    export.add_argument("--per-channel-dense", action="store_true",
                        help="int8 / int16x8: one weight scale per unit of dense layers (default: per layer)")
    export.add_argument("--no-polyphase", dest="polyphase", action="store_false",
                        help="keep a strided Conv1D on a 1-channel signal as written (default: lowered, 3x faster int8)")
    export.add_argument("--threads", type=_positive_int, default=1, help="benchmark threads")
    export.add_argument("--runs", type=_positive_int, default=100, help="benchmark runs")
    export.add_argument("--out", default="model.tflite", help="default: model.tflite")
    export.add_argument("--report", help="report folder (default: <out>-export-report)")
    export.set_defaults(func=commands.cmd_export)

    inspect = sub.add_parser("inspect", help="what is inside a .tflite file (is it really int8?)")
    inspect.add_argument("path", help="a .tflite file")
    inspect.add_argument("--json", action="store_true")
    inspect.set_defaults(func=commands.cmd_inspect)

    bench = sub.add_parser("bench", help="latency of .tflite files on this CPU (several: timed in turns)")
    bench.add_argument("path", nargs="+", help="one or more .tflite files (the first is the reference)")
    bench.add_argument("--threads", type=_positive_int, default=1)
    bench.add_argument("--runs", type=_positive_int, default=100)
    bench.add_argument("--rounds", type=_positive_int, default=5,
                       help="with several files: rounds of turns; the median over rounds is reported")
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(func=commands.cmd_bench)
    return parser


def _number(convert, accept, expected):
    """An argparse type: `convert` the text, then check it with `accept`."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v > 0, "a positive integer")
_positive_float = _number(float, lambda v: v > 0, "a positive number")
_fraction = _number(float, lambda v: 0 <= v < 1, "a fraction in [0, 1) (0.01 = one point)")


def main(argv=None):
    """Run the `tfmm` command line.

    Args:
        argv: Arguments without the program name; defaults to `sys.argv[1:]`.

    Returns:
        The exit code: 0 success, 2 bad usage or configuration, 1 failure.

    Example:
        >>> tfmm.cli.main(["demo", "--quick", "--out", "/tmp/demo"])  # doctest: +SKIP
        0
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    from tfmm._files import run_scratch
    from tfmm.errors import ConfigError, DataError, SecurityError, TfmmError

    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C
    try:
        _import_stack(args.verbose)
        with run_scratch():  # every temp file of the run, removed whatever happens
            return args.func(args)
    except (ConfigError, DataError, SecurityError) as e:
        print(f"tfmm {args.command}: error: {e}", file=sys.stderr)
        return 2
    except TfmmError as e:
        print(f"tfmm {args.command}: failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = " (the last checkpoint is kept: rerun with --resume)" if args.command == "optimize" else ""
        print(f"tfmm {args.command}: interrupted; no partial output was written{hint}", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
