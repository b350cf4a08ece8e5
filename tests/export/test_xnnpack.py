"""Naming the op XNNPACK refuses, when LiteRT only reports a failed partition."""

import numpy as np
import pytest

from tfmm._keras import keras
from tfmm.errors import ExportError
from tfmm.export import export_tflite
from tfmm.export.tflite import _check_loadable
from tfmm.export.xnnpack import ops_xnnpack_rejects


@pytest.fixture(scope="module")
def dense_int8(tmp_path_factory):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,), name="x")
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4)(hidden), name="two_dense")
    path = tmp_path_factory.mktemp("xnn") / "dense.tflite"
    data = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    export_tflite(model, str(path), representative_data=data, num_calibration_samples=64)
    return model, path.read_bytes()


def _with_first_matmul_output_scale(content, scale):
    """`content` with the first FULLY_CONNECTED's output scale set to `scale` (as a dead calibration does)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    graph = model.subgraphs[0]
    index, op = next((k, op) for k, op in enumerate(graph.operators)
                     if flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) == "FULLY_CONNECTED")
    graph.tensors[op.outputs[0]].quantization.scale = np.array([scale], np.float32)
    return index, bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def test_a_clean_file_has_no_rejected_op(dense_int8):
    assert ops_xnnpack_rejects(dense_int8[1]) == ()


def test_the_op_with_a_dead_output_range_is_named_with_its_scales(dense_int8, tmp_path):
    model, content = dense_int8
    index, broken = _with_first_matmul_output_scale(content, 1e-9)
    (found,) = ops_xnnpack_rejects(broken)
    assert found.startswith(f"op #{index} FULLY_CONNECTED:") and "output scale 1e-09" in found
    assert ">= 256, XNNPACK's limit" in found
    with pytest.raises(ExportError, match=rf"cannot be prepared by LiteRT .*XNNPACK rejects op #{index} FULLY_CONNECTED"):
        _check_loadable(broken, str(tmp_path / "candidate.tflite"), model, "int8")
    _check_loadable(content, str(tmp_path / "candidate.tflite"), model, "int8")  # the unpatched file prepares


def test_an_output_range_calibration_never_opened_is_widened_and_the_file_runs(tmp_path):
    """The unrolled LSTM's case: a matmul whose input slice is always zero in the calibration data."""
    from tfmm.export import verify_tflite
    from tfmm.export.tflite import ExportWarning

    keras.utils.set_random_seed(0)
    inputs = keras.Input((2, 8), name="x")
    live = keras.layers.Flatten()(keras.layers.Cropping1D((0, 1))(inputs))
    dead = keras.layers.Flatten()(keras.layers.Cropping1D((1, 0))(inputs))  # always zero below
    mixed = keras.layers.Add()([keras.layers.Dense(16)(live), keras.layers.Dense(16, use_bias=False)(dead)])
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(mixed), name="dead_step")
    data = np.random.default_rng(0).normal(size=(128, 2, 8)).astype("float32")
    data[:, 1] = 0.0
    path = str(tmp_path / "dead.tflite")
    with pytest.warns(ExportWarning, match=r"1 int8 op\(s\) of 'dead_step' .*FULLY_CONNECTED \(output scale"):
        export_tflite(model, path, representative_data=data, num_calibration_samples=128)
    report = verify_tflite(path, {"x": data}, reference_model=model)
    assert report.agreement >= 0.9


def test_xnnpack_partitions_counts_the_delegate_nodes(tmp_path):
    from tfmm.export.xnnpack import xnnpack_partitions

    x = keras.Input((6,), name="x")
    model = keras.Model(x, keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(8, activation="relu")(x)))
    path = export_tflite(model, str(tmp_path / "m.tflite"), quantization="float32").path
    assert xnnpack_partitions(path) == 1  # every op delegated, in one piece
    with pytest.raises(ExportError, match="No TFLite file"):
        xnnpack_partitions(str(tmp_path / "missing.tflite"))
