"""The `tfmm` command line.

Exit codes: 0 success, 2 bad usage or configuration, 1 any other failure.
"""

import argparse
import os
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
        args.out, quick=args.quick, epochs=args.epochs, seed=args.seed, verbose=0 if args.quiet else 2
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
    header = f"  {'variant':<10} {'accuracy':>9} {'agreement':>10} {'size':>10} {'gzip':>10} {'p50 ms':>8} {'vs f32':>7}"
    lines = [header, f"  {'keras':<10} {keras_accuracy:>9.3f} {'':>10} {'':>10} {'':>10} {'':>8} {'':>7}"]
    for v in variants:
        lines.append(
            f"  {v['mode']:<10} {v['test_accuracy']:>9.3f} {v['agreement']:>10.3f} "
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
    demo.set_defaults(func=_cmd_demo)
    return parser


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


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
    from tfmm.errors import ConfigError, DataError, TfmmError

    try:
        _import_stack(args.verbose)
        return args.func(args)
    except (ConfigError, DataError) as e:
        print(f"tfmm {args.command}: error: {e}", file=sys.stderr)
        return 2
    except TfmmError as e:
        print(f"tfmm {args.command}: failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tfmm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
