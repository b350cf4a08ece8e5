"""Golden list of tfmm's public names: a change here is an API change, made on purpose."""

import tfmm

EXPECTED = {
    "tfmm": ["__version__", "artifacts", "config", "data", "errors", "evaluate", "export", "models", "optimization"],
    "tfmm.evaluate": ["FileMeasurement", "export_and_measure", "keras_accuracy", "measure_file"],
    "tfmm.models": [
        "AudioBranchConfig", "FusionConfig", "ImageBranchConfig", "LogMelSpectrogram",
        "MultimodalConfig", "TextBranchConfig", "apply_audio_branch", "apply_fusion",
        "apply_head", "apply_image_branch", "apply_text_branch", "build_multimodal_model",
        "compile_model", "default_loss", "default_metrics", "flatten_model", "get_preset", "list_presets",
        "student_config", "load_model", "model_inputs", "nested_models",
    ],
    "tfmm.errors": [
        "ConfigError", "DataError", "ExportError", "KerasVersionError", "SecurityError", "TfmmError",
        "UnsupportedLayerError",
    ],
    "tfmm.artifacts": [
        "FORMAT", "MODEL_SUFFIXES", "check_model_config", "copy_model", "load_model", "load_tokenizer",
        "model_from_config", "save_model", "sidecar_path", "write_sidecars",
    ],
    "tfmm.optimization": [
        "ChannelPruningConfig", "ClusterPreserve", "ClusteringConfig", "DistillationConfig", "LayerPolicy",
        "LayerScope", "LowRankConfig", "OptimizationResult", "PruningConfig", "QuantizationConfig", "Recipe",
        "SparsityMask", "Stage", "StageReport", "apply_clustering", "apply_pruning", "apply_qat", "cluster_report",
        "distill", "factorize_low_rank", "get_layer_policy", "is_chief", "make_strategy", "optimize",
        "prune_channels", "qat_scope", "quantization_plan", "register_layer_policy", "sparsity_report", "strip",
        "strip_clustering",
    ],
    "tfmm.export": [
        "ExportConfig", "ExportResult", "ExportWarning", "LatencyComparison", "LatencyReport", "MODES", "MODE_TABLE", "PREFERENCES", "PolyphaseConv1D", "PrefixMaskedLSTM",
        "RNN_LAYOUTS",
        "Selection", "TFLiteRunner", "TFLiteSummary", "TensorInfo", "UnrolledBidirectional", "UnrolledLSTM",
        "VerificationReport", "benchmark_tflite", "compact_tflite", "compare_latency", "export_saved_model", "export_tflite",
        "gzip_size", "inspect_tflite", "prepare_for_export", "read_metadata", "verify_tflite",
    ],
    "tfmm.data": [
        "AVDigitsInfo", "DataLimits", "DataSplits", "DataWarning", "INPUT_DTYPES", "ManifestData", "TextTokenizer",
        "as_arrays", "as_dataset", "av_digits_tokenizer", "from_arrays", "from_manifest", "input_specs", "load_av_digits", "load_splits",
        "make_synthetic", "read_manifest", "representative_dataset", "validate_arrays",
    ],
}


def _public(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return sorted(names)


def test_public_names_match_the_golden_list():
    import tfmm.errors

    modules = {
        "tfmm": tfmm, "tfmm.models": tfmm.models, "tfmm.errors": tfmm.errors, "tfmm.data": tfmm.data,
        "tfmm.optimization": tfmm.optimization, "tfmm.export": tfmm.export, "tfmm.artifacts": tfmm.artifacts,
        "tfmm.evaluate": tfmm.evaluate,
    }
    for name, module in modules.items():
        assert _public(module) == sorted(EXPECTED[name]), name
        for attr in EXPECTED[name]:
            assert hasattr(module, attr), f"{name}.{attr}"


def test_every_error_is_a_tfmm_error():
    import tfmm.errors

    for name in EXPECTED["tfmm.errors"]:
        assert issubclass(getattr(tfmm.errors, name), tfmm.errors.TfmmError)


def test_public_functions_have_docstrings_with_sections():
    import inspect

    for module, name in [("tfmm.models", n) for n in EXPECTED["tfmm.models"]] + [
        ("tfmm.optimization", n) for n in EXPECTED["tfmm.optimization"]
    ] + [("tfmm.data", n) for n in EXPECTED["tfmm.data"]] + [("tfmm.evaluate", n) for n in EXPECTED["tfmm.evaluate"]] + [
        ("tfmm.artifacts", n) for n in EXPECTED["tfmm.artifacts"] if n not in ("FORMAT", "MODEL_SUFFIXES")
    ] + [
        ("tfmm.export", n) for n in EXPECTED["tfmm.export"]
        if n not in ("MODES", "MODE_TABLE", "PREFERENCES", "RNN_LAYOUTS")
    ]:
        obj = getattr({"tfmm.models": tfmm.models, "tfmm.optimization": tfmm.optimization,
                       "tfmm.data": tfmm.data, "tfmm.export": tfmm.export,
                       "tfmm.artifacts": tfmm.artifacts, "tfmm.evaluate": tfmm.evaluate}[module], name)
        doc = inspect.getdoc(obj) or ""
        assert doc, name
        if inspect.isfunction(obj):
            assert "Example:" in doc and "Returns:" in doc, name
