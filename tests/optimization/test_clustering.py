"""Weight clustering, and the collaborative chains CQAT (cluster -> QAT) and PCQAT."""

import numpy as np
import pytest

import tfmm

from tfmm._keras import keras, unwrap
from tfmm.errors import ConfigError
from tfmm.export import export_tflite
from tfmm.optimization import ClusteringConfig, Recipe, apply_clustering, cluster_report, optimize, strip_clustering

from tests.conftest import copy_model


def test_bad_clustering_configs_are_config_errors(learnable):
    with pytest.raises(ConfigError, match="`number_of_clusters` must be an integer >= 2. Received: 1"):
        ClusteringConfig(number_of_clusters=1)
    with pytest.raises(ConfigError, match="per_branch\\['text'\\]"):
        ClusteringConfig(per_branch={"text": 0})
    with pytest.raises(ConfigError, match="centroid_init"):
        ClusteringConfig(centroid_init="median")
    with pytest.raises(ConfigError, match="matches no layer"):
        apply_clustering(learnable["model"], {"per_layer": {"imgae_*": 4}})
    assert Recipe.from_dict({"cluster": {}, "quantize": None}).stages == ("cluster", "quantize")


@pytest.mark.slow
def test_clustered_kernels_have_at_most_k_values_and_unclusterable_layers_are_listed(learnable):
    x, y = learnable["train"]
    clustered, left_out = apply_clustering(learnable["model"], {"number_of_clusters": 8, "per_branch": {"audio": 4}})
    clustered.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy", ["accuracy"])
    clustered.fit(x, y, batch_size=32, epochs=2, verbose=0)
    plain = strip_clustering(clustered)
    report = cluster_report(plain)
    assert report and all(v["unique"] <= (4 if name.startswith("audio") else 8) for name, v in report.items())
    assert report["image_stem_conv"]["unique"] == 8 and report["audio_block1_conv"]["unique"] <= 4
    # The text branch is clustered too: the LSTM by TFMOT's RNN wrapper, the masked Embedding in
    # place (a wrapper would drop its mask), frozen while fine-tuning and trainable again after strip.
    assert left_out == [] and report["text_lstm1"]["unique"] <= 8 and report["text_embedding"]["unique"] <= 8
    assert plain.get_layer("text_embedding").trainable
    xv, yv = learnable["validation"]
    assert np.mean(plain.predict(xv, verbose=0).argmax(-1) == yv) >= learnable["accuracy"] - 0.1


@pytest.mark.slow
def test_pcqat_keeps_sparsity_and_cluster_counts(learnable):
    recipe = {"prune": {"target_sparsity": 0.5, "epochs": 1}, "cluster": {"number_of_clusters": 16, "epochs": 1},
              "quantize": {"epochs": 1}}
    result = optimize(copy_model(learnable["model"]), recipe, learnable["train"],
                      validation_data=learnable["validation"], verbose=0)
    stages = result.report["stages"]
    assert stages["cluster"]["preserve_sparsity"] is True
    for stage in ("cluster", "quantize"):
        assert abs(stages[stage]["sparsity"] - 0.5) <= 0.02, stage
        counts = stages[stage]["unique_values"]
        assert counts and max(counts.values()) <= 16 + 1, (stage, counts)  # the clusters + the zero
    # A tiny model (8-wide layers) at 50% sparsity and 16 values per kernel: well above
    # chance (0.25), not at float accuracy; the benchmark reports the default model.
    assert stages["quantize"]["metrics"]["accuracy"] >= learnable["accuracy"] - 0.2


@pytest.mark.slow
def test_cqat_keeps_cluster_counts_and_folds_conv1d_batch_norms(learnable, tmp_path):
    recipe = {"cluster": {"number_of_clusters": 6, "epochs": 1}, "quantize": {"epochs": 1}}
    result = optimize(copy_model(learnable["model"]), recipe, learnable["train"], verbose=0)
    counts = result.report["stages"]["quantize"]["unique_values"]
    assert counts["image_stem_conv"] <= 6 and counts["head_output"] <= 6
    assert result.report["stages"]["cluster"]["preserve_sparsity"] is False
    # The Conv1D BatchNormalizations were folded before clustering (QAT cannot fold them after without
    # breaking the clusters): the folded kernels keep their clusters and the int8 file fuses each
    # conv's ReLU instead of keeping a MUL + ADD + RELU per audio block.
    assert counts["audio_block1_conv"] <= 6 and counts["audio_block2_conv"] <= 6
    assert not [l.name for l in map(unwrap, result.model.layers)
                if type(l).__name__ == "BatchNormalization" and l.name.startswith("audio")]
    summary = export_tflite(result.model, tmp_path / "cqat.tflite", representative_data=learnable["validation"][0],
                            num_calibration_samples=32).summary
    assert summary.is_fully_integer and "RELU" not in summary.op_histogram, summary.op_histogram


def test_bidirectional_lstm_models_go_through_qat_and_pruning():
    """Regression: weights were copied into the Bidirectional's template LSTM (the base preset failed)."""
    from tfmm.models import TextBranchConfig, build_multimodal_model
    from tfmm.optimization import apply_pruning, apply_qat, qat_scope

    from tests.helpers import data_for, tiny_config

    cfg = tiny_config(("text", "image"), num_classes=3)
    cfg = cfg.__class__.from_dict({**cfg.to_dict(), "text": {**cfg.to_dict()["text"], "bidirectional": True}})
    assert isinstance(cfg.text, TextBranchConfig) and cfg.text.bidirectional
    model = build_multimodal_model(cfg)
    x, _ = data_for(cfg, n=4)
    with qat_scope():
        qat = apply_qat(model)
    assert qat.predict(x, verbose=0).shape == (4, 3)  # fresh QAT ranges: values differ until fine-tuned
    bilstm = next(l for l in qat.layers if l.name.endswith("text_bilstm1"))
    for got, want in zip(bilstm.get_weights(), model.get_layer("text_bilstm1").get_weights()):
        np.testing.assert_array_equal(got, want)
    pruned, callbacks = apply_pruning(model, {"target_sparsity": 0.5}, steps_per_epoch=4, epochs=1)
    assert "prune_low_magnitude_text_bilstm1" in [l.name for l in pruned.layers]  # both directions pruned
    pruned.compile("adam", "sparse_categorical_crossentropy")
    pruned.fit(x, np.arange(4) % 3, batch_size=1, epochs=1, verbose=0, callbacks=callbacks)
    stripped = tfmm.optimization.strip(pruned)
    assert abs(tfmm.optimization.sparsity_report(stripped)["layers"]["text_bilstm1"]["sparsity"] - 0.5) <= 0.02
    backward = [w for w in stripped.get_layer("text_bilstm1").weights if "backward" in w.name and "kernel" in w.name]
    assert backward and all(abs(np.mean(w.numpy() == 0) - 0.5) <= 0.02 for w in backward)


def test_kmeans_1d_leaves_k_values_and_keeps_zeros():
    from tfmm.optimization.clustering import kmeans_1d

    values = np.random.default_rng(0).normal(size=(6, 50)).astype("float32")
    values[:, :10] = 0.0
    out = kmeans_1d(values, 5)
    assert out.shape == values.shape and out.dtype == values.dtype and len(np.unique(out)) == 5
    assert np.abs(out - values).mean() < np.abs(values - values.mean()).mean() / 3  # a real fit
    kept = kmeans_1d(values, 5, keep_zeros=True)
    assert np.all(kept[:, :10] == 0) and np.all(kept[:, 10:] != 0) and len(np.unique(kept)) == 5
