"""A TF Hub encoder loaded from a local SavedModel plugs into a branch and trains."""

import numpy as np
import pytest
import tensorflow as tf

import tfmm
from tfmm.errors import ConfigError
from tfmm.models import ImageBranchConfig, MultimodalConfig, build_multimodal_model, compile_model

from tests.helpers import data_for


def _save_image_encoder(path, features=6):
    """A reusable TF2 SavedModel: (batch, 8, 8, 1) -> (batch, features), trainable."""
    module = tf.train.Checkpoint()  # an AutoTrackable that takes plain attributes
    module.kernel = tf.Variable(tf.random.stateless_normal((64, features), seed=(1, 2)) * 0.1)
    module.bias = tf.Variable(tf.zeros((features,)))

    @tf.function(input_signature=[tf.TensorSpec((None, 8, 8, 1), tf.float32)])
    def call(images):
        flat = tf.reshape(images, (-1, 64))
        return tf.nn.relu(tf.matmul(flat, module.kernel) + module.bias)

    module.__call__ = call
    # The reusable-SavedModel API: hub.KerasLayer reads these attributes.
    module.variables = [module.kernel, module.bias]
    module.trainable_variables = [module.kernel, module.bias]
    tf.saved_model.save(module, str(path))
    return str(path)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return _save_image_encoder(tmp_path_factory.mktemp("hub") / "encoder")


@pytest.mark.parametrize("trainable", [True, False])
def test_hub_encoder_trains_inside_the_model_only_when_trainable(encoder_dir, trainable):
    cfg = MultimodalConfig(
        num_classes=3,
        image=ImageBranchConfig(input_shape=(8, 8, 1), hub_encoder=encoder_dir, hub_trainable=trainable),
    )
    model = compile_model(build_multimodal_model(cfg), run_eagerly=True)
    hub_layer = model.get_layer("image_hub_encoder")
    assert len(hub_layer.trainable_weights) == (2 if trainable else 0)
    before = [w.numpy().copy() for w in hub_layer.weights]
    x, y = data_for(cfg, n=16)
    head_before = model.get_layer("head_output").kernel.numpy().copy()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    changed = any(not np.allclose(a, w.numpy()) for a, w in zip(before, hub_layer.weights))
    assert changed == trainable
    assert not np.allclose(head_before, model.get_layer("head_output").kernel.numpy())
    assert model.predict(x, verbose=0).shape == (16, 3)


def test_hub_encoder_in_a_multimodal_model_and_saved_model_round_trip(encoder_dir, tmp_path):
    base = tfmm.models.get_preset("tiny", image_shape=(8, 8, 1), vocab_size=32, sequence_length=8,
                                  audio_samples=256)
    cfg = MultimodalConfig.from_dict(
        {**base.to_dict(), "image": {"input_shape": [8, 8, 1], "hub_encoder": encoder_dir}}
    )
    model = compile_model(build_multimodal_model(cfg), run_eagerly=True)
    x, y = data_for(cfg, n=8)
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "with_hub.keras"
    model.save(path)
    loaded = tfmm.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)


def test_missing_hub_folder_is_a_config_error(tmp_path):
    cfg = MultimodalConfig(
        num_classes=3,
        image=ImageBranchConfig(input_shape=(8, 8, 1), hub_encoder=str(tmp_path / "nothing")),
    )
    with pytest.raises(ConfigError, match="must be a local folder holding a TF2 SavedModel"):
        build_multimodal_model(cfg)
