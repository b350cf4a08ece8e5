"""What each `tfmm` verb does; `tfmm.cli` parses arguments and maps errors to exit codes.

Every verb takes parsed arguments and returns an exit code; bad input raises
`ConfigError` / `DataError` (exit 2), other tfmm failures `TfmmError` (exit 1).

Length: one short function per verb plus the shared checks that must run before any
slow work (outputs, data, tokenizer); the measuring chain is `tfmm.evaluate`.
"""

import dataclasses
import json
import os
import shutil
import time

__all__ = ["cmd_train", "cmd_optimize", "cmd_export", "cmd_inspect", "cmd_bench"]

DEFAULT_RECIPE = {"prune": {"target_sparsity": 0.75, "epochs": 2}, "quantize": {"epochs": 2}}


def _say(args, *lines):
    if not getattr(args, "quiet", False):
        for line in lines:
            print(line, flush=True)


def _stem(path):
    return os.path.splitext(os.fspath(path))[0]


def _check_outputs(args, *, suffixes, report=None):
    """Check `--out` (and the report folder) before any slow work."""
    from tfmm._files import check_output_path

    check_output_path(args.out, argname="--out", suffixes=suffixes)
    if report is not None:
        check_output_path(report, argname="--report", folder=True)


def _check_data(args):
    """Fail on a missing data file before any slow work (model loading, training)."""
    from tfmm.data.sources import BUNDLED
    from tfmm.errors import DataError

    for flag, path in (("--data", args.data), ("--validation-data", getattr(args, "validation_data", None)),
                       ("--test-data", getattr(args, "test_data", None))):
        if path and path != BUNDLED and not os.path.exists(path):
            raise DataError(f"No data at {path!r} ({flag}): pass 'av-digits' or the path of a CSV / JSONL manifest.")
    vocabulary = getattr(args, "vocabulary", None)
    if vocabulary and not os.path.isfile(vocabulary):
        raise DataError(f"Vocabulary file not found: {vocabulary!r} (--vocabulary). Pass the .vocab.json "
                        "saved next to the model by `tfmm train`.")


def _check_tokenizer(model, tokenizer, args):
    """The model's text input, its Embedding and the tokenizer must agree before any graph runs."""
    from tfmm.data.arrays import input_specs, token_limits
    from tfmm.artifacts import sidecar_path
    from tfmm.data.sources import BUNDLED
    from tfmm.errors import DataError

    specs = input_specs(model)
    if "text" not in specs:
        return
    if tokenizer is None:
        if args.data == BUNDLED:
            return
        raise DataError(
            f"Model {args.model!r} has a text input, but no tokenizer was saved with it "
            f"({sidecar_path(args.model, 'vocabulary')!r} is missing). Pass the one it was trained with: "
            "--vocabulary <file>.vocab.json."
        )
    length = specs["text"][0][0]
    if tokenizer.sequence_length != length:
        raise DataError(
            f"The tokenizer gives {tokenizer.sequence_length} ids per text, but model {args.model!r} reads "
            f"{length}. Pass the tokenizer saved with the model (--vocabulary)."
        )
    vocab = token_limits(model).get("text")
    if vocab is not None and tokenizer.vocab_size > vocab:
        raise DataError(
            f"The tokenizer has {tokenizer.vocab_size} ids, but the model's Embedding takes {vocab}. "
            "Pass the tokenizer saved with the model (--vocabulary)."
        )


def _splits_for(args, model=None, *, tokenizer=None, sequence_length=None):
    """Load `--data` shaped for `model` (its inputs decide modalities and sizes)."""
    from tfmm.data import load_splits

    if model is not None:
        _check_tokenizer(model, tokenizer, args)
    options = {"allow_outside": getattr(args, "allow_outside", False)}
    if sequence_length is not None:
        options["sequence_length"] = sequence_length
    if model is not None:
        shapes = {t.name.split(":")[0]: tuple(t.shape[1:]) for t in model.inputs}
        options["modalities"] = tuple(shapes)
        if "image" in shapes:
            options["image_shape"] = shapes["image"]
        if "audio" in shapes:
            options["audio_samples"] = shapes["audio"][0]
        if "text" in shapes:
            options["sequence_length"] = shapes["text"][0]
    elif getattr(args, "modalities", None):
        options["modalities"] = tuple(args.modalities.split(","))
    splits = load_splits(args.data, validation=getattr(args, "validation_data", None),
                         test=getattr(args, "test_data", None), tokenizer=tokenizer,
                         sample_rate=getattr(args, "sample_rate", 8000), **options)
    limit = getattr(args, "limit", None)
    if not limit:
        return splits

    def head(part):
        features, labels = part
        return {k: v[:limit] for k, v in features.items()}, labels[:limit]


    return dataclasses.replace(splits, train=head(splits.train), validation=head(splits.validation),
                               test=head(splits.test))


def cmd_train(args):
    """`tfmm train`: build a model from a YAML config (or a preset) and fit it."""
    from tfmm._keras import keras
    from tfmm.data import from_arrays
    from tfmm.errors import ConfigError
    from tfmm.artifacts import save_model
    from tfmm.evaluate import keras_accuracy
    from tfmm.models import MultimodalConfig, build_multimodal_model, compile_model, get_preset

    _check_outputs(args, suffixes=(".keras", ".tfmm", ".h5"))
    _check_data(args)
    keras.utils.set_random_seed(args.seed)
    # One source of truth for the text length: the model config; the tokenizer is adapted to it.
    planned = MultimodalConfig.from_yaml(args.config) if args.config else get_preset(args.preset)
    splits = _splits_for(args, sequence_length=planned.text.sequence_length if planned.text else None)
    modalities = tuple(splits.train[0])
    if splits.tokenizer is not None and planned.text is not None and (
            splits.tokenizer.sequence_length != planned.text.sequence_length):
        raise ConfigError(
            f"The data's tokenizer gives {splits.tokenizer.sequence_length} ids per text, but the model "
            f"reads text.sequence_length={planned.text.sequence_length}. Set text.sequence_length to "
            f"{splits.tokenizer.sequence_length} in the config (the bundled data uses that length)."
        )
    if args.config:
        config = planned
        missing = sorted(set(config.modalities) - set(modalities))
        if missing:
            raise ConfigError(f"{args.config!r} has branches {missing} that the data {args.data!r} lacks.")
    else:
        kwargs = {"modalities": modalities}
        if splits.tokenizer is not None:
            kwargs["vocab_size"] = splits.tokenizer.vocab_size
        config = get_preset(args.preset, **kwargs)
    if config.text is not None and splits.tokenizer is not None and config.text.vocab_size < splits.tokenizer.vocab_size:
        raise ConfigError(
            f"text.vocab_size={config.text.vocab_size} is smaller than the data's vocabulary "
            f"({splits.tokenizer.vocab_size} ids); raise it in {args.config!r}."
        )
    model = compile_model(build_multimodal_model(config), learning_rate=args.learning_rate)
    start = time.perf_counter()
    history = model.fit(
        from_arrays(*splits.train, batch_size=args.batch_size, shuffle=True, seed=args.seed, model=model),
        validation_data=from_arrays(*splits.validation, batch_size=256, model=model),
        epochs=args.epochs, verbose=0 if args.quiet else 2,
    )
    seconds = time.perf_counter() - start
    accuracy = keras_accuracy(model, splits.test)
    save_model(model, args.out, tokenizer=splits.tokenizer, config=config)
    _say(args, f"\ntrained {model.name}: {model.count_params():,} parameters, {args.epochs} epochs in {seconds:.0f} s",
         f"test accuracy {accuracy:.3f} on {len(splits.test[1])} examples ({splits.name})",
         f"model written to {os.path.abspath(args.out)} (+ .yaml config"
         + (", .vocab.json)" if splits.tokenizer is not None else ")"))
    if args.json:
        print(json.dumps({"test_accuracy": accuracy, "params": model.count_params(), "seconds": round(seconds, 1),
                          "history": {k: [float(x) for x in v] for k, v in history.history.items()}}))
    return 0


def cmd_optimize(args):
    """`tfmm optimize`: run a recipe (default: prune 75% + sparsity-preserving QAT)."""
    from tfmm.data import from_arrays
    from tfmm.errors import ConfigError
    from tfmm.artifacts import load_model, load_tokenizer, save_model
    from tfmm.evaluate import keras_accuracy
    from tfmm.optimization import Recipe, is_chief, make_strategy, optimize
    from tfmm.report import write_report

    strategy = make_strategy(args.strategy)  # multi-worker: before any other TensorFlow work
    recipe = Recipe.from_yaml(args.recipe) if args.recipe else Recipe.from_dict(DEFAULT_RECIPE)
    report_dir = args.report or _stem(args.out) + "-optimize-report"
    _check_outputs(args, suffixes=(".tfmm", ".h5", ".keras"), report=report_dir)
    if recipe.stages != ("distill",) and args.out.lower().endswith(".keras"):
        raise ConfigError(
            f"--out {args.out!r}: pruned, clustered and QAT models do not load back from .keras with "
            f"tf-keras 2.21. Use tfmm's safe format: --out {_stem(args.out) + '.tfmm'!r}."
        )
    checkpoint = _stem(args.out) + ".checkpoint"
    if args.resume and not os.path.isdir(checkpoint):
        raise ConfigError(f"--resume: there is no checkpoint at {checkpoint!r} (it is made by an earlier "
                          f"`tfmm optimize --out {args.out}` that did not finish). Run without --resume.")
    _check_data(args)
    model = load_model(args.model, safe_mode=not args.unsafe_load)
    tokenizer = load_tokenizer(args.model, args.vocabulary)
    splits = _splits_for(args, model, tokenizer=tokenizer)
    before = keras_accuracy(model, splits.test)
    start = time.perf_counter()
    single = args.strategy == "none"
    if single and not args.resume and os.path.isdir(checkpoint):
        raise ConfigError(f"{checkpoint!r} holds the checkpoint of an earlier run that did not finish. "
                          "Continue it with --resume, or remove the folder to start over.")
    result = optimize(
        model, recipe, from_arrays(*splits.train, batch_size=32, shuffle=True, seed=args.seed, model=model),
        validation_data=from_arrays(*splits.validation, batch_size=256, model=model), epochs=args.epochs,
        strategy=strategy, verbose=0 if args.quiet else 2, checkpoint_dir=checkpoint if single else None,
        resume=args.resume, safe_mode=not args.unsafe_load,
    )
    seconds = time.perf_counter() - start
    if not is_chief(strategy):
        _say(args, f"worker done in {seconds:.0f} s; the chief (worker 0) writes the model and report")
        return 0
    after = keras_accuracy(result.model, splits.test)
    save_model(result.model, args.out, tokenizer=splits.tokenizer)
    if single:
        shutil.rmtree(checkpoint, ignore_errors=True)  # the run finished: nothing to resume
    stages = result.report["stages"]
    last = stages.get("quantize") or stages.get("prune") or {}
    sparsity = (stages.get("prune") or {}).get("layer_sparsity")
    facts = {
        "model": os.path.abspath(args.model), "data": splits.name, "recipe": json.dumps(recipe.to_dict()),
        "test accuracy before": f"{before:.4f}", "test accuracy after": f"{after:.4f}",
        "sparsity": f"{last.get('sparsity', 0.0):.4f}", "wall time": f"{seconds:.0f} s",
        "layers left float": ", ".join(f["layer"] for f in last.get("float_layers", [])) or "none",
    }
    shrunk = [stages[s] for s in ("channel_prune", "low_rank") if s in stages]
    if shrunk:  # the graph itself got smaller
        facts["parameters"] = f"{shrunk[0]['params_before']:,} -> {shrunk[-1]['params_after']:,}"
    html = write_report(report_dir, title="tfmm optimize", facts=facts,
                        variants=[{"name": "float", "accuracy": before}, {"name": "optimized", "accuracy": after}],
                        sparsity=sparsity, history=result.history, extra={"optimization": result.report})
    _say(args, "", *(f"  {k:<22} {v}" for k, v in facts.items()),
         f"\noptimized model written to {os.path.abspath(args.out)}; report: {os.path.abspath(html)}")
    return 0


def cmd_export(args):
    """`tfmm export`: convert, verify on the test split, time and report."""
    from tfmm.artifacts import load_model, load_tokenizer
    from tfmm.evaluate import export_and_measure
    from tfmm.report import write_report

    report_dir = args.report or _stem(args.out) + "-export-report"
    _check_outputs(args, suffixes=(".tflite",), report=report_dir)
    _check_data(args)
    model = load_model(args.model, safe_mode=not args.unsafe_load)
    tokenizer = load_tokenizer(args.model, args.vocabulary)
    splits = _splits_for(args, model, tokenizer=tokenizer)
    validation = splits.validation if args.max_accuracy_drop is not None else None
    measured = export_and_measure(
        model, args.out, splits.test, runs=args.runs, threads=(args.threads,), progress=not args.quiet,
        quantization=args.quantization, representative_data=splits.validation[0],
        prefer=args.prefer, max_accuracy_drop=args.max_accuracy_drop, validation_data=validation,
        rnn_layout=args.rnn_layout, tokenizer=splits.tokenizer, class_names=splits.class_names,
        layer_errors=args.layer_errors, per_channel_dense=args.per_channel_dense, polyphase=args.polyphase,
        verbose=0 if args.quiet else 1,
    )
    result, report, latency = measured.export, measured.verification, measured.latency[args.threads]
    variant = {
        "name": args.quantization, "accuracy": report.accuracy, "agreement": report.agreement,
        "size_bytes": result.size_bytes, "gzip_bytes": result.gzip_bytes, "p50_ms": latency.p50_ms,
    }
    facts = {
        "model": os.path.abspath(args.model), "file": os.path.abspath(result.path), "data": splits.name,
        "Keras test accuracy": f"{report.reference_accuracy:.4f}",
        "inputs": ", ".join(f"{t.name} {t.dtype}{list(t.shape)}" for t in result.summary.inputs),
        "float ops": json.dumps(result.float_ops) if result.float_ops else "none (fully integer)",
        "kept float": ", ".join(result.selection.kept_float) if result.selection else "-",
        "conversion": f"{result.conversion_seconds} s",
    }
    if result.layer_errors:
        worst = result.layer_errors[0]
        facts["largest int8 error"] = f"{worst['error']:.2f} steps ({worst['op']}: {worst['tensor'][:60]})"
    html = write_report(report_dir, title="tfmm export", facts=facts, variants=[variant],
                        layer_errors=list(result.layer_errors), extra={"export": result.to_dict(), "verification": report.to_dict(),
                               "latency": latency.to_dict()})
    _say(args, "", *(f"  {k:<20} {v}" for k, v in facts.items()),
         f"  {'test accuracy':<20} {report.accuracy:.4f} (agrees with Keras on {report.agreement:.1%})",
         f"  {'size':<20} {result.size_bytes:,} bytes ({result.gzip_bytes:,} gzipped)",
         f"  {'latency':<20} p50 {latency.p50_ms:.3f} ms, p90 {latency.p90_ms:.3f} ms ({args.threads} thread(s))",
         f"\nwritten: {os.path.abspath(result.path)}" + "".join(f", {f}" for f in result.side_files),
         f"report: {os.path.abspath(html)}")
    return 0


def cmd_inspect(args):
    """`tfmm inspect`: signature tensors, op histogram, float ops, sizes."""
    from tfmm.export import inspect_tflite

    summary = inspect_tflite(args.path)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, default=str))
        return 0
    print(f"{summary.path}: {summary.size_bytes:,} bytes ({summary.gzip_bytes:,} gzipped)")
    for kind, tensors in (("input", summary.inputs), ("output", summary.outputs)):
        for t in tensors:
            quant = f" scale={t.scale:.6g} zero_point={t.zero_point}" if t.scale else ""
            print(f"  {kind:<6} {t.name:<12} {t.dtype:<8} {list(t.shape)}{quant}")
    print("  ops    " + ", ".join(f"{k} x{v}" for k, v in summary.op_histogram.items()))
    print("  float  " + (", ".join(f"{k} x{v}" for k, v in summary.float_ops.items()) or "none: fully integer"))
    return 0


def cmd_bench(args):
    """`tfmm bench`: p50 / p90 / mean latency of one file; several files are timed in interleaved turns."""
    from tfmm.export import benchmark_tflite, compare_latency

    paths = args.path if isinstance(args.path, list) else [args.path]
    if len(paths) == 1:
        report = benchmark_tflite(paths[0], num_threads=args.threads, runs=args.runs)
        if args.json:
            print(json.dumps(report.to_dict()))
        else:
            print(f"{paths[0]}: p50 {report.p50_ms:.3f} ms, p90 {report.p90_ms:.3f} ms, "
                  f"mean {report.mean_ms:.3f} ms ({report.runs} runs, {report.num_threads} thread(s))")
        return 0
    turns = compare_latency(paths, rounds=args.rounds, runs=args.runs, num_threads=args.threads)
    if args.json:
        print(json.dumps({path: t.to_dict() for path, t in turns.items()}))
        return 0
    print(f"{args.rounds} rounds in turns, {args.runs} runs per file and round, {args.threads} thread(s); "
          "p50 = median over rounds (fastest - slowest round)")
    for path, t in turns.items():
        print(f"  {path}: p50 {t.p50_ms:.3f} ms ({t.low_ms:.3f} - {t.high_ms:.3f}), {t.ratio:.2f}x the first")
    return 0
