"""The `tfmm` command line.

Exit codes: 0 success, 2 bad usage or configuration, 1 any other failure.
"""

import argparse
import contextlib
import os
import sys
import tempfile

__all__ = ["main"]


@contextlib.contextmanager
def _quiet_tensorflow_startup(enabled):
    """Hide TensorFlow's C++ start-up lines (CUDA probes) printed at import and first use.

    They are written to file descriptor 2 before TensorFlow's own log level
    applies, so fd 2 goes to a temp file during the import; the captured text
    is replayed only if the import fails.
    """
    if not enabled:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _import_stack(verbose):
    with _quiet_tensorflow_startup(not verbose):
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
    print(f"\nModel, config and results.json written to {os.path.abspath(args.out)}")
    return 0


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
