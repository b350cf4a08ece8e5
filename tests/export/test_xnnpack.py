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
