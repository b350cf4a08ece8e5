"""Configuration dataclasses for the multimodal model builders.

Each branch has its own frozen config; `MultimodalConfig` ties the present
branches, the fusion and the head together. All of them round-trip through
`to_dict()` / `from_dict()` and YAML.

Length: one frozen dataclass per branch, each with its field checks and docs; they
are read together when writing a YAML config.
"""

import dataclasses
from typing import Optional, Tuple, Union

from tfmm.config import Config
from tfmm.errors import ConfigError

__all__ = [
    "ImageBranchConfig",
    "TextBranchConfig",
    "AudioBranchConfig",
    "FusionConfig",
    "MultimodalConfig",
    "MODALITIES",
    "FUSION_MODES",
    "TASKS",
]

MODALITIES = ("image", "text", "audio")
FUSION_MODES = ("concat", "attention", "gated")
TASKS = ("multiclass", "multilabel")
RESNET_DEPTHS = (10, 18, 34, 50)


class _HubEncoderFields:
    """Validation shared by the three branch configs for their hub encoder fields."""

    def _check_hub(self):
        path = self.hub_encoder
        if path is None:
            return
        if not isinstance(path, str) or not path:
            self._fail("hub_encoder", "must be a path to a local SavedModel directory or None")
        if "://" in path:
            self._fail(
                "hub_encoder",
                "must be a local SavedModel directory: tfmm never downloads at run time. "
                "Download the model once (e.g. with `tensorflow_hub.resolve`) and pass "
                "its folder",
            )
        self._check_bool("hub_trainable")


@dataclasses.dataclass(frozen=True)
class ImageBranchConfig(_HubEncoderFields, Config):
    """The image branch: a ResNet (v1.5) or a local TF Hub image encoder.

    Args:
        input_shape: `(height, width, channels)`, channels 1 (grayscale) or 3 (RGB).
        depth: ResNet depth: 10, 18, 34 (basic blocks) or 50 (bottleneck blocks).
        base_width: Filters of the first stage; each later stage doubles them.
        num_stages: How many of the four ResNet stages to use (1-4); fewer stages
            suit small images and small models.
        stem: `"standard"` (7x7 stride-2 conv + max pool, for large images),
            `"compact"` (one 3x3 stride-1 conv, for small images such as 28x28) or
            `"auto"` (compact when the smaller side is below 64 pixels).
        rescale: Optional factor applied to pixels first (e.g. `1/255`).
        dropout: Dropout rate on the pooled image vector.
        hub_encoder: Optional local SavedModel folder used instead of the ResNet.
        hub_trainable: Whether the hub encoder's weights are fine-tuned.
    """

    input_shape: Tuple[int, ...]
    depth: int = 18
    base_width: int = 64
    num_stages: int = 4
    stem: str = "auto"
    rescale: Optional[float] = None
    dropout: float = 0.0
    hub_encoder: Optional[str] = None
    hub_trainable: bool = False

    def validate(self):
        shape = self.input_shape
        if (
            not isinstance(shape, tuple)
            or len(shape) != 3
            or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in shape)
            or shape[-1] not in (1, 3)
        ):
            self._fail(
                "input_shape",
                "must be (height, width, channels) with positive integers and 1 or 3 channels",
            )
        self._check_choice("depth", RESNET_DEPTHS)
        self._check_positive_int("base_width")
        self._check_choice("num_stages", (1, 2, 3, 4))
        self._check_choice("stem", ("auto", "standard", "compact"))
        if self.rescale is not None and (
            isinstance(self.rescale, bool) or not isinstance(self.rescale, (int, float))
        ):
            self._fail("rescale", "must be a number or None")
        self._check_fraction("dropout")
        self._check_hub()


@dataclasses.dataclass(frozen=True)
class TextBranchConfig(_HubEncoderFields, Config):
    """The text branch: token ids -> Embedding -> LSTM layer(s) -> a vector.

    Args:
        vocab_size: Number of token ids, including 0 (padding) and the OOV id.
        sequence_length: Fixed number of token ids per example.
        embedding_dim: Width of the token embedding.
        lstm_units: Units of each LSTM layer (per direction).
        num_lstm_layers: Stacked LSTM layers.
        bidirectional: Wrap each LSTM in `Bidirectional`.
        dropout: Input dropout of each LSTM layer.
        mask_zero: Treat id 0 as padding and mask it out.
        unroll: Unroll the LSTM over the fixed sequence length: larger graphs,
            but it converts to plain TFLite ops that match Keras exactly and
            quantize to int8 (see the export docs).
        hub_encoder: Optional local SavedModel folder mapping the int32 token ids
            to a vector, used instead of Embedding + LSTM.
        hub_trainable: Whether the hub encoder's weights are fine-tuned.
    """

    vocab_size: int
    sequence_length: int
    embedding_dim: int = 64
    lstm_units: int = 64
    num_lstm_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    mask_zero: bool = True
    unroll: bool = False
    hub_encoder: Optional[str] = None
    hub_trainable: bool = False

    def validate(self):
        self._check_positive_int("vocab_size")
        if self.vocab_size < 2:
            self._fail("vocab_size", "must be at least 2 (padding id 0 plus one token)")
        for name in ("sequence_length", "embedding_dim", "lstm_units", "num_lstm_layers"):
            self._check_positive_int(name)
        self._check_bool("bidirectional")
        self._check_bool("mask_zero")
        self._check_bool("unroll")
        self._check_fraction("dropout")
        self._check_hub()


@dataclasses.dataclass(frozen=True)
class AudioBranchConfig(_HubEncoderFields, Config):
    """The audio branch: a waveform -> (optional log-mel) -> strided Conv1D stack.

    Args:
        input_shape: `(samples, 1)`: a mono waveform of fixed length.
        filters: Filters of each Conv1D block.
        kernel_sizes: Kernel size of each block (one number is used for all).
        strides: Stride of each block (one number is used for all).
        batch_norm: Add BatchNormalization after each convolution.
        pool_size: Max-pool size after each block; 1 disables pooling.
        frontend: `"waveform"` (convolve the raw samples) or `"log_mel"` (a
            log-mel spectrogram built with `tf.signal` first).
        sample_rate: Sample rate in Hz, used by the log-mel front end.
        frame_length: STFT window length in samples (log-mel front end).
        frame_step: STFT hop in samples (log-mel front end).
        num_mel_bins: Mel bands (log-mel front end).
        dropout: Dropout rate on the pooled audio vector.
        hub_encoder: Optional local SavedModel folder used instead of the Conv1D stack.
        hub_trainable: Whether the hub encoder's weights are fine-tuned.
    """

    input_shape: Tuple[int, ...]
    filters: Tuple[int, ...] = (16, 32, 64, 128)
    kernel_sizes: Union[int, Tuple[int, ...]] = 9
    strides: Union[int, Tuple[int, ...]] = 4
    batch_norm: bool = True
    pool_size: int = 1
    frontend: str = "waveform"
    sample_rate: int = 16000
    frame_length: int = 400
    frame_step: int = 160
    num_mel_bins: int = 40
    dropout: float = 0.0
    hub_encoder: Optional[str] = None
    hub_trainable: bool = False

    def validate(self):
        shape = self.input_shape
        if (
            not isinstance(shape, tuple)
            or len(shape) != 2
            or shape[1] != 1
            or isinstance(shape[0], bool)
            or not isinstance(shape[0], int)
            or shape[0] <= 0
        ):
            self._fail("input_shape", "must be (samples, 1) with a positive number of samples")
        self._check_positive_ints("filters")
        for name in ("kernel_sizes", "strides"):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, name, (value,) * len(self.filters))
            self._check_positive_ints(name)
            if len(getattr(self, name)) != len(self.filters):
                self._fail(name, f"must be one number or one per filter ({len(self.filters)})")
        self._check_bool("batch_norm")
        self._check_positive_int("pool_size")
        self._check_choice("frontend", ("waveform", "log_mel"))
        for name in ("sample_rate", "frame_length", "frame_step", "num_mel_bins"):
            self._check_positive_int(name)
        if self.frontend == "log_mel" and self.frame_length > shape[0]:
            self._fail("frame_length", f"must not exceed the {shape[0]} input samples")
        self._check_fraction("dropout")
        self._check_hub()

    def block_specs(self):
        """Return `[(filters, kernel_size, stride), ...]`, one per Conv1D block."""
        return list(zip(self.filters, self.kernel_sizes, self.strides))


@dataclasses.dataclass(frozen=True)
class FusionConfig(Config):
    """How the branch vectors are combined.

    Args:
        mode: `"concat"` (concatenate), `"attention"` (multi-head self-attention
            over one projected token per modality) or `"gated"` (learned sigmoid
            gate per modality over projected vectors).
        projection_dim: Width each modality is projected to (attention / gated).
        num_heads: Attention heads (attention mode); must divide `projection_dim`.
        hidden_units: Dense ReLU layers applied after fusion.
        dropout: Dropout after fusion.
    """

    mode: str = "concat"
    projection_dim: int = 64
    num_heads: int = 4
    hidden_units: Tuple[int, ...] = ()
    dropout: float = 0.0

    def validate(self):
        self._check_choice("mode", FUSION_MODES)
        self._check_positive_int("projection_dim")
        self._check_positive_int("num_heads")
        if self.mode == "attention" and self.projection_dim % self.num_heads:
            self._fail("num_heads", f"must divide projection_dim={self.projection_dim}")
        self._check_positive_ints("hidden_units", allow_empty=True)
        self._check_fraction("dropout")


@dataclasses.dataclass(frozen=True)
class MultimodalConfig(Config):
    """The whole model: present branches, fusion and classification head.

    Args:
        num_classes: Number of output classes (or labels, for multi-label).
        image: `ImageBranchConfig` or None when there is no image input.
        text: `TextBranchConfig` or None when there is no text input.
        audio: `AudioBranchConfig` or None when there is no audio input.
        fusion: A fusion mode name (`"concat"`, `"attention"`, `"gated"`) or a
            `FusionConfig`.
        task: `"multiclass"` (softmax head) or `"multilabel"` (sigmoid head).
        head_hidden_units: Dense ReLU layers in the head before the output.
        head_dropout: Dropout before the output layer.
        name: Name of the Keras model.

    Raises:
        ConfigError: No modality is given or a value is invalid.

    Example:
        >>> cfg = tfmm.models.MultimodalConfig(
        ...     num_classes=10,
        ...     image=tfmm.models.ImageBranchConfig(input_shape=(28, 28, 1), depth=10),
        ...     fusion="gated",
        ... )
        >>> cfg.modalities
        ('image',)
    """

    num_classes: int
    image: Optional[ImageBranchConfig] = None
    text: Optional[TextBranchConfig] = None
    audio: Optional[AudioBranchConfig] = None
    fusion: Union[str, FusionConfig] = "concat"
    task: str = "multiclass"
    head_hidden_units: Tuple[int, ...] = ()
    head_dropout: float = 0.0
    name: str = "tfmm_multimodal"

    def validate(self):
        if isinstance(self.fusion, str):
            if self.fusion not in FUSION_MODES:
                self._fail("fusion", f"must be one of {list(FUSION_MODES)} or a FusionConfig")
            object.__setattr__(self, "fusion", FusionConfig(mode=self.fusion))
        elif not isinstance(self.fusion, FusionConfig):
            self._fail("fusion", f"must be one of {list(FUSION_MODES)} or a FusionConfig")
        self._check_positive_int("num_classes")
        self._check_choice("task", TASKS)
        if self.task == "multiclass" and self.num_classes < 2:
            self._fail("num_classes", "must be at least 2 for a multiclass head")
        expected = {"image": ImageBranchConfig, "text": TextBranchConfig, "audio": AudioBranchConfig}
        for name, cls in expected.items():
            value = getattr(self, name)
            if value is not None and not isinstance(value, cls):
                self._fail(name, f"must be a {cls.__name__}, a dict or None")
        if not self.modalities:
            raise ConfigError(
                "MultimodalConfig needs at least one modality. Received: image=None, "
                "text=None, audio=None. Pass an ImageBranchConfig, TextBranchConfig "
                "and/or AudioBranchConfig."
            )
        self._check_positive_ints("head_hidden_units", allow_empty=True)
        self._check_fraction("head_dropout")
        if not isinstance(self.name, str) or not self.name:
            self._fail("name", "must be a non-empty string")

    @property
    def modalities(self):
        """The present modalities, in the fixed order image, text, audio."""
        return tuple(m for m in MODALITIES if getattr(self, m) is not None)
