import numpy as np
import pytest

import tfmm
from tfmm.errors import ConfigError
from tfmm.optimization import PruningConfig, apply_pruning, sparsity_report, strip
from tfmm.optimization.pruning import pruning_schedule_steps

from tests.conftest import copy_model


@pytest.mark.parametrize("total", [2, 7, 40, 137, 5000])
@pytest.mark.parametrize("end_fraction", [0.3, 0.7, 1.0])
def test_schedule_puts_the_last_update_on_end_step_within_the_run(total, end_fraction):
    cfg = PruningConfig(end_fraction=end_fraction)
    begin, end, frequency = pruning_schedule_steps(cfg, total)
    assert 0 <= begin < end <= total - 1
    assert (end - begin) % frequency == 0
    assert 1 <= frequency <= 100


def test_schedule_needs_two_steps():
    with pytest.raises(ConfigError, match="at least 2 fine-tuning steps; got 1"):
        pruning_schedule_steps(PruningConfig(), 1)


def _prune(learnable, config, epochs=1):
    model = copy_model(learnable["model"])
    x, y = learnable["train"]
    steps = int(np.ceil(len(y) / 32))
    pruned, callbacks = apply_pruning(model, config, steps_per_epoch=steps, epochs=epochs)
    pruned.compile("adam", "sparse_categorical_crossentropy")
    pruned.fit(x, y, batch_size=32, epochs=epochs, callbacks=callbacks, verbose=0)
    return pruned


@pytest.mark.slow
def test_per_branch_and_per_layer_targets_are_reached_and_strip_keeps_them(learnable):
    config = PruningConfig(
        target_sparsity=0.6,
        per_branch={"text": 0.3, "head": 0.0},
        per_layer={"audio_block2_*": 0.8},
    )
    pruned = _prune(learnable, config)
    stripped = strip(pruned)
    assert not any("prune_low_magnitude" in l.name for l in stripped.layers)
    report = sparsity_report(stripped)["layers"]
    for name, entry in report.items():
        expected = 0.8 if name.startswith("audio_block2") else 0.3 if name.startswith("text") else (
            0.0 if name.startswith("head") else 0.6)
        assert abs(entry["sparsity"] - expected) <= 0.02, (name, entry)
    assert "text_lstm1" in report and "audio_block1_conv" in report
    # The wrapped and the stripped model compute the same function.
    x, _ = learnable["validation"]
    np.testing.assert_allclose(pruned.predict(x, verbose=0), stripped.predict(x, verbose=0), atol=1e-5)


@pytest.mark.slow
def test_two_by_four_structure_holds_in_every_pruned_conv2d_and_dense_kernel(learnable):
    pruned = strip(_prune(learnable, PruningConfig(target_sparsity=0.5, m_by_n=(2, 4))))
    checked = 0
    for layer in pruned.layers:
        if type(layer).__name__ in ("Conv2D", "Dense"):
            kernel = layer.kernel.numpy()
            # TFMOT groups 4 consecutive weights along the input-channel axis.
            groups = np.moveaxis(kernel, -2, -1).reshape(-1, 4) if kernel.shape[-2] % 4 == 0 else None
            if groups is None:
                continue
            assert ((groups == 0).sum(axis=1) >= 2).all(), layer.name
            checked += 1
    assert checked >= 3


def test_patterns_that_match_nothing_are_config_errors(learnable):
    with pytest.raises(ConfigError, match="`per_layer`: pattern 'imgae_\\*' matches no layer"):
        apply_pruning(learnable["model"], PruningConfig(per_layer={"imgae_*": 0.5}), steps_per_epoch=5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(target_sparsity=1.0), "`target_sparsity` must be a number in [0.0, 1.0)"),
        (dict(target_sparsity=-0.1), "Received: target_sparsity=-0.1"),
        (dict(per_branch={"vision": 0.5}), "unknown: ['vision']"),
        (dict(per_layer={"image_*": 1.5}), "Sparsity for 'image_*' in `per_layer`"),
        (dict(m_by_n=(4, 2)), "`m_by_n` must be (m, n) with 0 < m < n"),
        (dict(schedule="cubic"), "`schedule` must be one of ['polynomial', 'constant']"),
    ],
)
def test_bad_pruning_configs(kwargs, message):
    with pytest.raises(ConfigError) as info:
        PruningConfig(**kwargs)
    assert message in str(info.value)


def test_sparsity_report_on_a_dense_model(learnable):
    report = sparsity_report(learnable["model"])
    assert report["overall"] < 0.01
    assert set(report["layers"]) >= {"image_stem_conv", "text_lstm1", "audio_block1_conv", "head_output"}
    # Embedding with a padding mask is not pruned (TFMOT wrappers drop masks).
    assert "text_embedding" not in report["layers"]
