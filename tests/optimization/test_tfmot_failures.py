"""Each failure of the raw TFMOT path on our models, next to tfmm handling it."""

import os

import numpy as np
import pytest
import tensorflow as tf

import tfmm
from tfmm._keras import keras, tfmot
from tfmm.models import ImageBranchConfig, MultimodalConfig, build_multimodal_model, compile_model

from tests.helpers import data_for, tiny_config
from tests.models.test_hub import _save_image_encoder


def test_raw_quantize_model_fails_on_the_int32_token_input_and_tfmm_does_not():
    model = build_multimodal_model(tiny_config(("text", "image"), num_classes=3))
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        tfmot().quantization.keras.quantize_model(model)
    qat = tfmm.optimization.apply_qat(model)
    x, _ = data_for(tiny_config(("text", "image"), num_classes=3), n=4)
    assert qat.predict(x, verbose=0).shape == (4, 3)


def test_raw_quantize_apply_refuses_conv1d_and_tfmm_quantizes_it():
    cfg = tiny_config(("audio",), num_classes=3)
    model = build_multimodal_model(cfg)
    annotate = tfmot().quantization.keras.quantize_annotate_layer

    def clone(layer):
        return annotate(layer.__class__.from_config(layer.get_config()))

    annotated = keras.models.clone_model(model, clone_function=clone)
    with pytest.raises(RuntimeError, match="is not supported"):
        tfmot().quantization.keras.quantize_apply(annotated)
    qat = tfmm.optimization.apply_qat(model)
    assert "quant_audio_block1_conv" in [l.name for l in qat.layers]


@pytest.mark.slow
def test_raw_default_frequency_leaves_sparsity_at_zero_but_tfmm_reaches_the_target():
    cfg = tiny_config(("image",), num_classes=3)
    x, y = data_for(cfg, n=320)  # 40 steps of 8
    sparsity = tfmot().sparsity.keras
    raw = sparsity.prune_low_magnitude(
        build_multimodal_model(cfg),
        pruning_schedule=sparsity.PolynomialDecay(0.0, 0.7, begin_step=0, end_step=40),
    )
    raw.compile("adam", "sparse_categorical_crossentropy")
    raw.fit(x, y, batch_size=8, epochs=1, callbacks=[sparsity.UpdatePruningStep()], verbose=0)
    raw_sparsity = tfmm.optimization.sparsity_report(sparsity.strip_pruning(raw))["overall"]
    assert raw_sparsity < 0.05  # default frequency=100 never fires in 40 steps

    pruned, callbacks = tfmm.optimization.apply_pruning(
        build_multimodal_model(cfg), tfmm.optimization.PruningConfig(target_sparsity=0.7),
        steps_per_epoch=40, epochs=1,
    )
    pruned.compile("adam", "sparse_categorical_crossentropy")
    pruned.fit(x, y, batch_size=8, epochs=1, callbacks=callbacks, verbose=0)
    report = tfmm.optimization.sparsity_report(tfmm.optimization.strip(pruned))
    assert abs(report["overall"] - 0.7) <= 0.02


@pytest.mark.slow
def test_hub_encoder_breaks_raw_tfmot_but_tfmm_optimizes_the_rest(tmp_path):
    encoder = _save_image_encoder(tmp_path / "encoder")
    base = tiny_config(("image", "audio"), num_classes=3)
    cfg = MultimodalConfig.from_dict(
        {**base.to_dict(), "image": {"input_shape": [8, 8, 1], "hub_encoder": encoder}}
    )
    model = compile_model(build_multimodal_model(cfg))
    with pytest.raises(ValueError):
        tfmot().sparsity.keras.prune_low_magnitude(model)
    with pytest.raises((ValueError, RuntimeError)):
        tfmot().quantization.keras.quantize_model(model)
    x, y = data_for(cfg, n=64)
    result = tfmm.optimization.optimize(
        model, {"prune": {"target_sparsity": 0.5, "epochs": 1}, "quantize": {"epochs": 1}},
        (x, y), validation_data=(x, y), verbose=0,
    )
    stages = result.report["stages"]
    assert abs(stages["prune"]["sparsity"] - 0.5) <= 0.02
    floats = {f["layer"] for f in stages["quantize"]["float_layers"]}
    assert "image_hub_encoder" in floats
    assert "quant_audio_block1_conv" in [l.name for l in result.model.layers]
