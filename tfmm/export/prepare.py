"""`prepare_for_export`: the model a TFLite conversion starts from.

Pruning wrappers are stripped, recurrent layers laid out (`tfmm.export.rnn`) and
1-channel strided Conv1D layers lowered (`tfmm.export.conv_lowering`); every rewrite
computes the same function with the same weights.
"""

from tfmm._args import require_model
from tfmm._keras import hub_custom_objects, keras, strip_pruning, tfmot
from tfmm.export.conv_lowering import PolyphaseConv1D, lowerable, lowered_layer, lowered_weights
from tfmm.export.rnn import check_rnn_layout, relaid_rnn, rnn_action

__all__ = ["prepare_for_export"]


def prepare_for_export(model, *, rnn_layout="fused", polyphase=True):
    """Return the model to convert: pruning wrappers stripped, RNNs laid out, strided Conv1D lowered.

    Args:
        model: A `tf_keras` model (plain, pruned or QAT).
        rnn_layout: `"fused"`: LSTMs become one `UNIDIRECTIONAL_SEQUENCE_LSTM` op
            (smallest file; masked LSTMs via `PrefixMaskedLSTM`), other RNNs are
            unrolled. `"unrolled"`: every RNN is unrolled over its fixed sequence
            length (larger file, much faster int8 on CPUs; a last-layer LSTM
            becomes `UnrolledLSTM`, a last-layer `Bidirectional` LSTM
            `UnrolledBidirectional`). Weights are the same.
        polyphase: Compute each strided Conv1D on a 1-channel input (a raw waveform)
            as a stride-1 Conv1D on the samples regrouped by the stride
            (`tfmm.export.conv_lowering`): the same function, about 3x faster in
            int8 on the test machines' CPUs (the audio branch's first layer).

    Returns:
        A model computing the same function (the same object when nothing changes).

    Raises:
        ConfigError: Unknown `rnn_layout`.

    Example:
        >>> ready = tfmm.export.prepare_for_export(model, rnn_layout="unrolled")  # doctest: +SKIP
    """
    require_model(model, "model")
    check_rnn_layout(rnn_layout)
    model = strip_pruning(model)
    plan = {layer.name: ("polyphase" if polyphase and lowerable(layer) else rnn_action(layer, rnn_layout))
            for layer in model.layers}
    if not any(plan.values()):
        return model

    def clone(layer):
        action = plan.get(layer.name)
        if action == "polyphase":
            return lowered_layer(layer)
        if action:
            return relaid_rnn(layer, action)
        return layer.__class__.from_config(layer.get_config())

    with tfmot().quantization.keras.quantize_scope({**hub_custom_objects(), "PolyphaseConv1D": PolyphaseConv1D}):
        rewritten = keras.models.clone_model(model, clone_function=clone)
    for layer in rewritten.layers:
        old = model.get_layer(layer.name)
        layer.set_weights(lowered_weights(old, layer) if plan.get(layer.name) == "polyphase" else old.get_weights())
    return rewritten
