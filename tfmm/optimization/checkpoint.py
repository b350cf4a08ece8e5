"""Checkpoints of `optimize`: the model after each stage, and after each epoch inside one.

A checkpoint folder holds `state.json` (the recipe, the finished stages' reports and
histories, the epoch reached inside the running stage) and `.tfmm` models (tfmm's safe
format, which QAT and pruned models round-trip through). Every file is written
atomically, the state last, so a run killed at any moment leaves the last good
checkpoint. `optimize(..., checkpoint_dir=..., resume=True)` continues from it.
"""

import json
import os

from tfmm._files import atomic_write_text
from tfmm._keras import keras
from tfmm.errors import ConfigError

__all__ = ["Checkpoint", "EpochCheckpoint"]

_STATE = "state.json"
_FORMAT = "tfmm.OptimizeCheckpoint/1"


class Checkpoint:
    """The checkpoint folder of one `optimize` run.

    Args:
        folder: Where the checkpoint lives (created if missing).
        recipe: The run's `Recipe`; a resumed run must use the same one.
        resume: Continue from the folder's state; without it an existing state is
            an error (nothing is overwritten by accident).

    Raises:
        ConfigError: The folder is a file, holds another run's state (without
            `resume`), or holds a different recipe (with `resume`).

    Example:
        >>> ckpt = Checkpoint("run.ckpt", recipe, resume=True)  # doctest: +SKIP
    """

    def __init__(self, folder, recipe, *, resume=False):
        self.folder = os.fspath(folder)
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise ConfigError(f"checkpoint_dir {self.folder!r} is a file; pass a folder path.")
        os.makedirs(self.folder, exist_ok=True)
        self.recipe = recipe.to_dict()
        path = os.path.join(self.folder, _STATE)
        self.state = {"format": _FORMAT, "recipe": self.recipe, "stages": [], "report": None,
                      "history": {}, "epoch": None}
        if os.path.isfile(path):
            if not resume:
                raise ConfigError(
                    f"{self.folder!r} holds the checkpoint of an earlier run. Resume it (resume=True, "
                    "`--resume`), or remove the folder to start over."
                )
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
            if state.get("format") != _FORMAT or state.get("recipe") != self.recipe:
                raise ConfigError(
                    f"The checkpoint in {self.folder!r} was made with recipe {state.get('recipe')}, not "
                    f"{self.recipe}. Resume with the same recipe, or remove the folder to start over."
                )
            self.state = state
        self.resumed = bool(self.state["stages"] or self.state["epoch"])

    def _model_path(self, name):
        return os.path.join(self.folder, f"{name}.tfmm")

    def _write_state(self):
        atomic_write_text(os.path.join(self.folder, _STATE), json.dumps(self.state, indent=1, default=str))

    def done(self, stage):
        """Whether `stage` finished in an earlier run."""
        return stage in self.state["stages"]

    def restore(self, safe_mode=True):
        """Return `(model after the last finished stage or None, report, history)`."""
        model = None
        if self.state["stages"]:
            from tfmm.artifacts import load_model

            model = load_model(self._model_path(f"after-{self.state['stages'][-1]}"), compile=False,
                               safe_mode=safe_mode)
        return model, self.state["report"], self.state["history"]

    def start(self, report):
        """Record the report of the float model (before any stage)."""
        if self.state["report"] is None:
            self.state["report"] = report
            self._write_state()

    def save_stage(self, stage, model, report, history):
        """Record a finished stage: its model, then the state naming it."""
        from tfmm.artifacts import save_model

        save_model(model, self._model_path(f"after-{stage}"))
        self.state.update(stages=self.state["stages"] + [stage], report=report, history=history, epoch=None)
        self._write_state()
        epoch_model = self._model_path("epoch")
        if os.path.exists(epoch_model):
            os.remove(epoch_model)

    def epoch_callback(self, stage, epochs, logs=None):
        """An `EpochCheckpoint` callback for `stage` (which trains for `epochs`)."""
        return EpochCheckpoint(self, stage, epochs, logs)

    def resume_epoch(self, stage, safe_mode=True):
        """Return `(model, epochs done, logs so far)` of an interrupted `stage`, or None."""
        epoch = self.state["epoch"]
        if not epoch or epoch["stage"] != stage:
            return None
        from tfmm.artifacts import load_model

        return load_model(self._model_path("epoch"), compile=False, safe_mode=safe_mode), epoch["done"], epoch["logs"]

    def save_epoch(self, stage, model, done, logs):
        from tfmm.artifacts import save_model

        save_model(model, self._model_path("epoch"))
        self.state["epoch"] = {"stage": stage, "done": done, "logs": logs}
        self._write_state()


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the training model and its per-epoch logs after every epoch of a stage.

    Args:
        checkpoint: The run's `Checkpoint`.
        stage: The stage name.
        epochs: The stage's epoch count (the last epoch is covered by `save_stage`).
        logs: Logs of epochs done before a resume.
    """

    def __init__(self, checkpoint, stage, epochs, logs=None):
        super().__init__()
        self.checkpoint, self.stage, self.epochs = checkpoint, stage, epochs
        self.logs = {k: list(v) for k, v in (logs or {}).items()}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.logs.setdefault(key, []).append(float(value))
        if epoch + 1 < self.epochs:
            self.checkpoint.save_epoch(self.stage, self.model, epoch + 1, self.logs)
