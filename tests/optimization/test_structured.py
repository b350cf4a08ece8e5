"""Channel pruning and low-rank factorization: the graph gets smaller, the maths stays right."""

import numpy as np
import pytest

from tfmm._keras import keras
from tfmm.errors import ConfigError
from tfmm.export import export_tflite, verify_tflite
from tfmm.optimization import Recipe, factorize_low_rank, optimize, prune_channels

from tests.conftest import copy_model


def _residual_concat_model():
    """Conv -> residual Add -> Conv -> pooling, and a Dense branch, joined by a Concatenate."""
    keras.utils.set_random_seed(0)
    pixels, values = keras.Input((12, 12, 1), name="pixels"), keras.Input((6,), name="values")
    a = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(pixels)
    b = keras.layers.Conv2D(8, 3, padding="same", name="c2")(a)
    b = keras.layers.BatchNormalization(name="bn2")(b)
    b = keras.layers.Add(name="add")([a, keras.layers.ReLU()(b)])
    b = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(b)
    c = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c3")(b)
    d = keras.layers.Dense(8, activation="relu", name="d1")(values)
    z = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(c), d])
    return keras.Model([pixels, values], keras.layers.Dense(3, name="out")(z))


def _inputs(n=4):
    rng = np.random.default_rng(0)
    return [rng.normal(size=(n, 12, 12, 1)).astype("float32"), rng.normal(size=(n, 6)).astype("float32")]


def test_removing_dead_channels_leaves_the_outputs_unchanged():
    model = _residual_concat_model()
    # Channels 4..7 of each producer carry exact zeros (c2's through a BatchNorm that maps 0 to 0).
    for name in ("c1", "c2", "c3", "d1"):
        kernel, bias = model.get_layer(name).get_weights()
        kernel[..., 4:], bias[4:] = 0.0, 0.0
        model.get_layer(name).set_weights([kernel, bias])
    gamma, beta, mean, var = model.get_layer("bn2").get_weights()
    model.get_layer("bn2").set_weights([gamma, np.zeros_like(beta), np.zeros_like(mean), var])
    smaller, plan, left_out = prune_channels(model, {"fraction": 0.5})
    assert {p["layer"]: (p["before"], p["after"]) for p in plan} == {n: (8, 4) for n in ("c1", "c2", "c3", "d1")}
    assert [e["layer"] for e in left_out] == ["out"] and "model output" in left_out[0]["reason"]
    # The residual group (c1, c2, the Add, the depthwise conv) kept the same channels.
    assert smaller.get_layer("dw").get_weights()[0].shape == (3, 3, 4, 1)
    assert smaller.get_layer("out").get_weights()[0].shape == (8, 3)  # 4 pooled + 4 dense rows
    np.testing.assert_allclose(smaller.predict(_inputs(), verbose=0), model.predict(_inputs(), verbose=0),
                               atol=1e-5)
    assert smaller.count_params() < model.count_params() / 2


def test_channel_pruning_keeps_the_most_important_filters_and_names_what_it_leaves():
    model = _residual_concat_model()
    kernel, bias = model.get_layer("c3").get_weights()
    kernel[..., [1, 6]] *= 100.0  # the two largest filters
    model.get_layer("c3").set_weights([kernel, bias])
    smaller, plan, _ = prune_channels(model, {"fraction": 0.75, "per_layer": {"d1": 0.0}})
    kept = smaller.get_layer("c3").get_weights()[0]  # its input rows were pruned too (the dw group)
    norms = np.abs(kernel).sum(axis=(0, 1, 2))
    assert kept.shape[-1] == 2 and np.abs(kept).sum(axis=(0, 1, 2)).min() > 10 * np.delete(norms, [1, 6]).max()
    assert "d1" not in {p["layer"] for p in plan}
    _, plan, left_out = prune_channels(model, {"fraction": 0.5, "exclude": ["c2"], "multiple_of": 3})
    left = {e["layer"]: e["reason"] for e in left_out}
    assert "shares its channels with 'c2'" in left["c1"] and {p["after"] for p in plan} == {6}
    with pytest.raises(ConfigError, match="fraction in \\[0, 1\\)"):
        prune_channels(model, {"fraction": 1.0})
    with pytest.raises(ConfigError, match="matches no layer"):
        prune_channels(model, {"exclude": ["nope"]})


def test_a_concatenation_at_the_output_keeps_its_inputs_whole():
    x = keras.Input((6,), name="x")
    a = keras.layers.Dense(4, name="a")(keras.layers.Dense(8, name="hidden")(x))
    b = keras.layers.Dense(4, name="b")(x)
    model = keras.Model(x, keras.layers.Concatenate(name="joined")([a, b]))
    smaller, plan, left_out = prune_channels(model, {"fraction": 0.5})
    assert [p["layer"] for p in plan] == ["hidden"]  # read by `a` only: free to shrink
    assert {e["layer"] for e in left_out} == {"a", "b"} and all("joined" in e["reason"] for e in left_out)
    assert smaller.output_shape == model.output_shape == (None, 8)


def test_low_rank_of_an_exactly_low_rank_kernel_is_exact_and_keeps_the_mask():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    embedded = keras.layers.Embedding(20, 12, mask_zero=True, name="emb")(tokens)
    recurrent = keras.layers.LSTM(6, name="lstm")(embedded)
    out = keras.layers.Dense(3, name="out")(keras.layers.Dense(16, activation="relu", name="hidden")(recurrent))
    model = keras.Model(tokens, out)
    model.get_layer("emb").set_weights([rng.normal(size=(20, 2)) @ rng.normal(size=(2, 12))])
    kernel, recurrent_kernel, bias = model.get_layer("lstm").get_weights()
    model.get_layer("lstm").set_weights([rng.normal(size=(12, 3)) @ rng.normal(size=(3, 24)), recurrent_kernel, bias])
    smaller, plan, left_out = factorize_low_rank(model, {"rank_fraction": 0.25, "per_layer": {"emb": 2, "lstm": 3, "out": 3}})
    assert {p["layer"]: p["rank"] for p in plan} == {"emb": 2, "lstm": 3, "hidden": 2}
    assert all(abs(p["energy"] - 1.0) < 1e-6 for p in plan if p["layer"] != "hidden")
    assert [e["layer"] for e in left_out] == ["out"] and "saves no weights" in left_out[0]["reason"]
    assert smaller.get_layer("emb_lowrank").output_dim == 2 and smaller.get_layer("emb").kernel.shape == (2, 12)
    ids = rng.integers(1, 20, size=(5, 6)).astype("int32")
    ids[:, 4:] = 0  # padding: the mask must still reach the LSTM
    hidden = keras.Model(model.inputs, model.get_layer("lstm").output)
    small_hidden = keras.Model(smaller.inputs, smaller.get_layer("lstm").output)
    np.testing.assert_allclose(small_hidden.predict(ids, verbose=0), hidden.predict(ids, verbose=0), atol=1e-4)
    with pytest.raises(ConfigError, match="matches no layer"):
        factorize_low_rank(model, {"per_layer": {"lstn": 2}})
    with pytest.raises(ConfigError, match="rank >= 1"):
        factorize_low_rank(model, {"per_layer": {"lstm": 0}})
    # By energy: an exactly rank-2 table needs rank 2 for 99.9% of it.
    _, plan, _ = factorize_low_rank(model, {"energy": 0.999, "exclude": ["lstm", "hidden", "out"]})
    assert [(p["layer"], p["rank"]) for p in plan] == [("emb", 2)]
    with pytest.raises(ConfigError, match="energy"):
        factorize_low_rank(model, {"energy": 1.5})


def test_recipes_take_the_new_stages_in_order():
    recipe = Recipe.from_dict({"quantize": {}, "low_rank": {}, "channel_prune": {"fraction": 0.25}})
    assert recipe.stages == ("channel_prune", "low_rank", "quantize")
    assert Recipe.from_dict(recipe.to_dict()) == recipe


@pytest.mark.slow
def test_channel_prune_and_low_rank_shrink_recover_and_export_verified_int8(learnable, tmp_path):
    model = copy_model(learnable["model"])
    recipe = {"channel_prune": {"fraction": 0.5, "epochs": 3}, "low_rank": {"rank_fraction": 0.5, "epochs": 2},
              "quantize": {"epochs": 1}}
    result = optimize(model, recipe, learnable["train"], validation_data=learnable["validation"], verbose=0)
    channels, low_rank = result.stage_reports["channel_prune"], result.stage_reports["low_rank"]
    assert channels.details["params_after"] < 0.75 * channels.details["params_before"]
    pruned = {p["layer"]: p for p in channels.details["plan"]}
    assert pruned["image_stem_conv"]["after"] == pruned["image_stem_conv"]["before"] // 2  # residual group too
    assert low_rank.details["params_after"] < low_rank.details["params_before"]
    assert "text_lstm1" in {p["layer"] for p in low_rank.details["plan"]}
    # The tiny task is learnable: the smaller model recovers to near the float model's accuracy.
    assert channels.metrics["accuracy"] >= learnable["accuracy"] - 0.1
    assert result.stage_reports["quantize"].metrics["accuracy"] >= learnable["accuracy"] - 0.1
    exported = export_tflite(result.model, str(tmp_path / "small.tflite"), representative_data=learnable["train"][0])
    report = verify_tflite(exported.path, learnable["validation"], reference_model=result.model)
    assert report.agreement >= 0.95 and not exported.float_ops
