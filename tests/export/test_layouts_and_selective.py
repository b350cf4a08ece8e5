"""RNN layouts, compaction, state reset and selective int8."""

import numpy as np
import pytest

import tfmm
from tfmm._keras import keras
from tfmm.errors import ConfigError, ExportError
from tfmm.export import TFLiteRunner, export_tflite, inspect_tflite, prepare_for_export, verify_tflite
from tfmm.export.compact import compact_tflite
from tfmm.export.selective import select_for_accuracy



@pytest.fixture(scope="module")
def fused_int8(learnable, tmp_path_factory):
    """Full int8 with the fused LSTM: small, but the int8 LSTM loses accuracy."""
    path = tmp_path_factory.mktemp("fused") / "fused_int8.tflite"
    return export_tflite(learnable["model"], str(path), representative_data=learnable["validation"][0],
                         rnn_layout="fused", num_calibration_samples=64)


def test_prefix_masked_lstm_equals_the_masked_keras_lstm(learnable):
    model = learnable["model"]
    x, _ = learnable["validation"]
    x = dict(x)
    x["text"] = x["text"].copy()
    x["text"][:4] = 0  # missing texts: the masked LSTM returns its zero state
    fused = prepare_for_export(model, rnn_layout="fused")
    assert any(isinstance(l, tfmm.export.PrefixMaskedLSTM) for l in fused.layers)
    np.testing.assert_allclose(fused.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    unrolled = prepare_for_export(model, rnn_layout="unrolled")
    assert [type(l).__name__ for l in unrolled.layers if "LSTM" in type(l).__name__] == ["UnrolledLSTM"]
    np.testing.assert_allclose(unrolled.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    with pytest.raises(tfmm.errors.ConfigError, match="`rnn_layout` must be one of"):
        prepare_for_export(model, rnn_layout="rolled")


def _unrolled_equals_keras(model):
    """The unrolled export model and its layer kinds, after checking it equals `model` on padded ids."""
    tokens = np.random.default_rng(0).integers(1, 20, (16, 7)).astype("int32")
    for row, length in enumerate(np.random.default_rng(1).integers(0, 8, 16)):
        tokens[row, length:] = 0  # end padding of every length, 0 to 7
    unrolled = prepare_for_export(model, rnn_layout="unrolled")
    np.testing.assert_allclose(unrolled.predict(tokens, verbose=0), model.predict(tokens, verbose=0), atol=1e-5)
    return unrolled, {l.name: type(l).__name__ for l in unrolled.layers}


@pytest.mark.parametrize("mask_zero", [False, True])
def test_unrolled_layout_equals_keras_for_stacked_and_unmasked_lstms(mask_zero):
    keras.utils.set_random_seed(3)
    ids = keras.Input((7,), dtype="int32", name="text")
    x = keras.layers.Embedding(20, 8, mask_zero=mask_zero)(ids)
    x = keras.layers.LSTM(6, return_sequences=True, name="first")(x)  # Keras' own unrolling
    x = keras.layers.LSTM(5, name="last")(x)  # UnrolledLSTM
    model = keras.Model(ids, keras.layers.Dense(3, activation="softmax")(x))
    unrolled, kinds = _unrolled_equals_keras(model)
    assert kinds["first"] == "LSTM" and kinds["last"] == "UnrolledLSTM"
    assert unrolled.get_layer("first").unroll


@pytest.mark.parametrize("mask_zero, merge_mode", [(False, "ave"), (True, "concat")])
def test_unrolled_bidirectional_and_backward_lstms_equal_keras(mask_zero, merge_mode):
    keras.utils.set_random_seed(4)
    ids = keras.Input((7,), dtype="int32", name="text")
    x = keras.layers.Embedding(20, 8, mask_zero=mask_zero)(ids)
    bi = keras.layers.Bidirectional(keras.layers.LSTM(5), merge_mode=merge_mode, name="bi")(x)
    back = keras.layers.LSTM(4, go_backwards=True, name="back")(x)
    model = keras.Model(ids, keras.layers.Concatenate()([bi, back]))
    unrolled, kinds = _unrolled_equals_keras(model)
    assert kinds["bi"] == "UnrolledBidirectional" and kinds["back"] == "UnrolledLSTM"


@pytest.mark.slow
def test_fused_lstm_state_is_reset_between_examples(learnable, tmp_path):
    result = export_tflite(learnable["model"], str(tmp_path / "f.tflite"), quantization="float32")
    assert result.rnn_layout == "fused"
    assert result.summary.op_histogram.get("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1
    x, _ = learnable["validation"]
    first, second = ({k: v[i : i + 1] for k, v in x.items()} for i in (0, 1))
    runner = TFLiteRunner(result.path)
    alone = list(runner(first).values())[0]
    runner(second)
    np.testing.assert_array_equal(list(runner(first).values())[0], alone)
    # The raw signature runner does not reset: the LSTM starts from the last state.
    raw = runner.runner
    raw(**second)
    stale = list(raw(**first).values())[0]
    assert not np.allclose(stale, alone, atol=1e-6)


@pytest.mark.slow
def test_compaction_drops_internal_names_only(learnable, tmp_path):
    x, _ = learnable["validation"]
    plain = export_tflite(learnable["model"], str(tmp_path / "plain.tflite"), representative_data=x,
                          compact=False, num_calibration_samples=32)
    small = tmp_path / "small.tflite"
    small.write_bytes(compact_tflite(open(plain.path, "rb").read()))
    assert small.stat().st_size < 0.85 * plain.size_bytes
    summary = inspect_tflite(small)
    assert [t.name for t in summary.inputs] == ["audio", "image", "text"]
    assert summary.op_histogram == plain.summary.op_histogram
    features = {k: v[:20] for k, v in x.items()}
    np.testing.assert_array_equal(TFLiteRunner(small).predict(features), TFLiteRunner(plain.path).predict(features))
    # Equal number vectors are written once: one zero-point vector per distinct content.
    zero_points = _zero_point_vectors(small.read_bytes())
    assert len(zero_points) > 100
    assert len(set(zero_points.values())) == len({content for content, _ in zero_points.values()}) < 40


def _zero_point_vectors(content):
    """{tensor index: (zero points, byte position of the vector)} of a flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.Model.GetRootAs(content, 0).Subgraphs(0)
    vectors = {}
    for t in range(graph.TensorsLength()):
        quantization = graph.Tensors(t).Quantization()
        if quantization is not None and quantization.ZeroPointLength():
            table = quantization._tab
            position = table.Vector(table.Offset(10))  # field 3: zero_point
            vectors[t] = (quantization.ZeroPointAsNumpy().tobytes(), position)
    return vectors


@pytest.mark.slow
def test_max_accuracy_drop_keeps_the_worst_tensors_float(learnable, fused_int8, tmp_path):
    x, y = learnable["validation"]
    full = verify_tflite(fused_int8.path, (x, y))
    assert full.accuracy < learnable["accuracy"] - 0.02, "precondition: full int8 loses accuracy"
    result = export_tflite(learnable["model"], str(tmp_path / "sel.tflite"), representative_data=x,
                           rnn_layout="fused", max_accuracy_drop=0.02, validation_data=(x, y),
                           num_calibration_samples=64)
    selection = result.selection
    assert selection.goal == "accuracy" and 1 <= len(selection.kept_float) < 10
    assert selection.baseline == pytest.approx(full.accuracy, abs=0.02)
    assert selection.final >= selection.target == pytest.approx(learnable["accuracy"] - 0.02)
    assert verify_tflite(result.path, (x, y)).accuracy == pytest.approx(selection.final)
    assert result.float_ops, "the kept tensors compute in float"
    assert {t.name: t.dtype for t in result.summary.inputs} == {"audio": "int8", "image": "int8", "text": "int32"}
    # The fewest: one tensor fewer misses the target.
    fewer = [t for t in selection.trials if len(t[0]) == len(selection.kept_float) - 1]
    assert all(accuracy < selection.target for _, accuracy in fewer)


@pytest.mark.slow
def test_prefer_latency_measures_each_op_type(learnable, tmp_path):
    x, y = learnable["validation"]
    result = export_tflite(learnable["model"], str(tmp_path / "fast.tflite"), representative_data=x,
                           prefer="latency", num_calibration_samples=32)
    selection = result.selection
    assert selection.goal == "latency" and selection.baseline > 0 and selection.final > 0
    assert selection.final <= selection.baseline
    tried = {ops[-1] for ops, _ in selection.trials[1:]}
    assert "CONV_2D" in tried and "FULLY_CONNECTED" in tried
    assert set(selection.kept_float) <= tried
    assert verify_tflite(result.path, (x, y), reference_model=learnable["model"]).agreement >= 0.9


def test_selective_options_are_checked(learnable, tmp_path):
    model, (x, y) = learnable["model"], learnable["validation"]
    with pytest.raises(ConfigError, match="need quantization='int8'"):
        export_tflite(model, str(tmp_path / "m.tflite"), quantization="dynamic", prefer="latency")
    with pytest.raises(ConfigError, match="`prefer` must be one of"):
        export_tflite(model, str(tmp_path / "m.tflite"), representative_data=x, prefer="speed")
    with pytest.raises(ConfigError, match="needs `validation_data"):
        export_tflite(model, str(tmp_path / "m.tflite"), representative_data=x, max_accuracy_drop=0.01)
    with pytest.raises(ConfigError, match="max_accuracy_drop=5"):
        export_tflite(model, str(tmp_path / "m.tflite"), representative_data=x, max_accuracy_drop=5,
                      validation_data=(x, y))
    assert not list(tmp_path.iterdir())


class _FakeCalibrated:
    """Stands in for a calibrated model: accuracy grows with the tensors kept float."""

    def __init__(self, needed):
        self.needed = needed

    def quantize(self, *, denylisted_nodes=(), denylisted_ops=()):
        return str(len(denylisted_nodes)).encode()

    def ranked_tensors(self):
        return [(f"t{i}", "CONV_2D", 10.0 - i) for i in range(12)]


def _accuracy(needed):
    return lambda path: 0.9 if int(open(path, "rb").read()) >= needed else 0.5


def test_accuracy_search_keeps_the_fewest_tensors_float():
    content, selection = select_for_accuracy(_FakeCalibrated(5), _accuracy(5), 0.85)
    assert content == b"5" and selection.kept_float == ("t0", "t1", "t2", "t3", "t4")
    assert [len(k) for k, _ in selection.trials] == [0, 1, 2, 4, 8, 6, 5]
    content, selection = select_for_accuracy(_FakeCalibrated(0), _accuracy(0), 0.85)
    assert content == b"0" and selection.kept_float == () and selection.final == 0.9


def test_candidates_litert_cannot_prepare_are_skipped_and_said():
    def accuracy(path):
        kept = int(open(path, "rb").read())
        if kept in (1, 2):  # e.g. a zero-scale tensor XNNPACK refuses
            raise ExportError(f"{path!r} is not a readable TFLite model")
        return 0.9 if kept >= 3 else 0.5

    said = []
    content, selection = select_for_accuracy(_FakeCalibrated(3), accuracy, 0.85, progress=said.append)
    assert content == b"3" and len(selection.kept_float) == 3
    assert [figure for _, figure in selection.trials][:3] == [0.5, None, None]
    assert sum("candidate skipped: LiteRT cannot prepare it" in line for line in said) == 2
    assert any("fails to prepare" in line for line in said)


def test_unreachable_accuracy_is_an_export_error():
    with pytest.raises(ExportError, match="could not reach accuracy 0.9500: full int8 gave 0.5000"):
        select_for_accuracy(_FakeCalibrated(99), _accuracy(99), 0.95)
