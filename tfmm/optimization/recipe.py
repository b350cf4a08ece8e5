"""`Recipe`: which optimization stages run, in tfmm's fixed order, with what settings."""

import dataclasses
from typing import Optional

from tfmm.config import Config
from tfmm.errors import ConfigError
from tfmm.optimization.channels import ChannelPruningConfig
from tfmm.optimization.clustering import ClusteringConfig
from tfmm.optimization.distillation import DistillationConfig
from tfmm.optimization.lowrank import LowRankConfig
from tfmm.optimization.pruning import PruningConfig
from tfmm.optimization.qat import QuantizationConfig

__all__ = ["Recipe", "STAGES"]

# Stages always run in this order, whatever order a YAML file lists them in.
STAGES = ("distill", "channel_prune", "low_rank", "prune", "cluster", "quantize")


@dataclasses.dataclass(frozen=True)
class Recipe(Config):
    """An optimization recipe: distill -> channel prune -> low rank -> prune -> cluster -> QAT, each fine-tuned.

    Args:
        distill: A `DistillationConfig` (or dict with a `teacher` path): the
            model given to `optimize` is the student, trained from the teacher
            first. None skips distillation.
        channel_prune: A `ChannelPruningConfig` (or dict): remove whole filters /
            units (the graph gets smaller), or None.
        low_rank: A `LowRankConfig` (or dict): factorize Dense / Embedding / RNN
            input kernels, or None.
        prune: A `PruningConfig` (or dict), or None to skip pruning.
        cluster: A `ClusteringConfig` (or dict), or None. After `prune` it keeps
            the zeros; before `quantize` QAT keeps the clusters (PCQAT / CQAT).
        quantize: A `QuantizationConfig` (or dict), or None to skip QAT.
        learning_rate: Learning rate of the pruning fine-tune (QAT has its own).

    Raises:
        ConfigError: No stage, or a bad stage setting.

    Example:
        >>> recipe = tfmm.optimization.Recipe.from_dict(
        ...     {"prune": {"target_sparsity": 0.75}, "quantize": {"epochs": 1}})
        >>> recipe.stages
        ('prune', 'quantize')
    """

    distill: Optional[DistillationConfig] = None
    channel_prune: Optional[ChannelPruningConfig] = None
    low_rank: Optional[LowRankConfig] = None
    prune: Optional[PruningConfig] = None
    cluster: Optional[ClusteringConfig] = None
    quantize: Optional[QuantizationConfig] = None
    learning_rate: float = 5e-4

    def validate(self):
        types = {"distill": DistillationConfig, "channel_prune": ChannelPruningConfig, "low_rank": LowRankConfig,
                 "prune": PruningConfig, "cluster": ClusteringConfig,
                 "quantize": QuantizationConfig}
        for stage, kind in types.items():
            value = getattr(self, stage)
            if value is not None and not isinstance(value, kind):
                raise ConfigError(
                    f"Recipe stage `{stage}` must be a mapping of its settings ({{}} for the defaults) or a "
                    f"{kind.__name__}. Received: {stage}={value!r}; e.g. {{'prune': {{'target_sparsity': 0.5}}}}."
                )
        if not self.stages:
            raise ConfigError(
                f"A Recipe needs at least one stage. Use keys from {list(STAGES)}, e.g. "
                "{'prune': {'target_sparsity': 0.5}, 'quantize': {}}."
            )
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float)) or not (
            0 < self.learning_rate < 1
        ):
            self._fail("learning_rate", "must be a number in (0, 1)")

    @classmethod
    def from_dict(cls, data):
        """Build a recipe; stage settings may be None or `{}` for the defaults.

        Args:
            data: Mapping with stage keys (`distill`, `channel_prune`, `low_rank`, `prune`, `cluster`, `quantize`)
                and `learning_rate`.

        Returns:
            A `Recipe`.

        Raises:
            ConfigError: Unknown stage or setting (the message lists the allowed ones).

        Example:
            >>> tfmm.optimization.Recipe.from_dict({"quantize": None}).stages
            ('quantize',)
        """
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(STAGES) - {"learning_rate"})
            if unknown:
                raise ConfigError(
                    f"Unknown recipe stage(s) {unknown}. Allowed stages: {list(STAGES)} "
                    "(plus `learning_rate`)."
                )
            data = {k: ({} if v is None and k in STAGES else v) for k, v in data.items()}
        return super().from_dict(data)

    def to_dict(self):
        """Return the recipe as a dict that `from_dict` rebuilds exactly (skipped stages left out).

        Returns:
            A JSON / YAML-safe dict.

        Example:
            >>> tfmm.optimization.Recipe.from_dict({"quantize": {}}).to_dict()["quantize"]["epochs"]
            1
        """
        data = super().to_dict()
        return {k: v for k, v in data.items() if not (k in STAGES and v is None)}

    @property
    def stages(self):
        """The stages that will run, in order."""
        return tuple(s for s in STAGES if getattr(self, s) is not None)

    def with_epochs(self, epochs):
        """Return a copy where every stage fine-tunes for `epochs` epochs."""
        changes = {
            s: dataclasses.replace(getattr(self, s), epochs=epochs) for s in self.stages
        }
        return dataclasses.replace(self, **changes)
