"""Text -> int32 token ids with `TextVectorization`, with a vocabulary file to ship."""

import json
import os

import numpy as np
import tensorflow as tf

from tfmm._keras import keras
from tfmm._files import atomic_write_text
from tfmm.errors import DataError

__all__ = ["TextTokenizer"]

_SPLITS = ("character", "whitespace")


class TextTokenizer:
    """Turns strings into fixed-length int32 token ids (0 = padding, 1 = unknown).

    A thin wrapper over `tf_keras.layers.TextVectorization` that can be saved to
    a small JSON file and loaded again, so training and inference (and the
    Android app) produce the same ids.

    Args:
        vocabulary: Tokens, most frequent first, *without* the padding and
            unknown entries (ids 0 and 1 are reserved for those).
        sequence_length: Ids per text: shorter texts are padded with 0, longer cut.
        split: `"character"` (robust to typos) or `"whitespace"` (words).
        lowercase: Lower-case texts first.

    Example:
        >>> tok = tfmm.data.TextTokenizer.adapt(["one", "two"], sequence_length=8)
        >>> tok(["one"]).shape
        (1, 8)
    """

    def __init__(self, vocabulary, *, sequence_length, split="character", lowercase=True):
        if split not in _SPLITS:
            raise DataError(f"`split` must be one of {list(_SPLITS)}. Received: split={split!r}")
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length <= 0:
            raise DataError(
                f"`sequence_length` must be a positive integer. Received: {sequence_length!r}"
            )
        vocabulary = [str(t) for t in vocabulary]
        if not vocabulary:
            raise DataError("The vocabulary is empty: adapt the tokenizer on some texts first.")
        if len(set(vocabulary)) != len(vocabulary) or "" in vocabulary or "[UNK]" in vocabulary:
            raise DataError(
                "The vocabulary must list unique, non-empty tokens without '' and '[UNK]' "
                "(ids 0 and 1 are reserved for them)."
            )
        self.sequence_length = sequence_length
        self.split = split
        self.lowercase = bool(lowercase)
        self._layer = keras.layers.TextVectorization(
            standardize="lower" if self.lowercase else None,
            split=split,
            output_mode="int",
            output_sequence_length=sequence_length,
            vocabulary=vocabulary,
        )

    @classmethod
    def adapt(cls, texts, *, sequence_length, split="character", lowercase=True, max_tokens=None):
        """Learn a vocabulary from `texts` and return a tokenizer.

        Args:
            texts: Iterable of strings.
            sequence_length: Ids per text.
            split: `"character"` or `"whitespace"`.
            lowercase: Lower-case texts first.
            max_tokens: Optional cap on the vocabulary size (reserved ids included).

        Returns:
            A `TextTokenizer`.

        Raises:
            DataError: `texts` holds no token.

        Example:
            >>> tok = tfmm.data.TextTokenizer.adapt(["seven", "sieben"], sequence_length=12)
        """
        layer = keras.layers.TextVectorization(
            max_tokens=max_tokens,
            standardize="lower" if lowercase else None,
            split=split,
            output_mode="int",
        )
        layer.adapt(tf.constant([str(t) for t in texts], dtype=tf.string))
        vocabulary = layer.get_vocabulary()[2:]
        return cls(vocabulary, sequence_length=sequence_length, split=split, lowercase=lowercase)

    @property
    def vocabulary(self):
        """All tokens by id, including `''` (0, padding) and `'[UNK]'` (1)."""
        return [str(t) for t in self._layer.get_vocabulary()]

    @property
    def vocab_size(self):
        """Number of ids: use it as `TextBranchConfig.vocab_size`."""
        return len(self.vocabulary)

    def __call__(self, texts):
        """Tokenize a list of strings into an int32 array `(len(texts), sequence_length)`."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.sequence_length), dtype="int32")
        return self._layer(tf.constant(texts, dtype=tf.string)).numpy().astype("int32")

    def to_dict(self):
        """Return the JSON-safe description used by `save`."""
        return {
            "format": "tfmm.TextTokenizer/1",
            "vocabulary": self.vocabulary[2:],
            "sequence_length": self.sequence_length,
            "split": self.split,
            "lowercase": self.lowercase,
            "padding_id": 0,
            "unknown_id": 1,
        }

    def save(self, path):
        """Write the tokenizer as JSON (atomically).

        Args:
            path: Destination `.json` file.

        Returns:
            The path written.

        Example:
            >>> tok.save("vocab.json")  # doctest: +SKIP
        """
        return atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path):
        """Load a tokenizer written by `save`.

        Args:
            path: A `.json` file.

        Returns:
            A `TextTokenizer` producing the same ids as the saved one.

        Raises:
            DataError: The file is missing or is not a tfmm tokenizer file.

        Example:
            >>> tok = tfmm.data.TextTokenizer.load("vocab.json")  # doctest: +SKIP
        """
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if data.get("format") != "tfmm.TextTokenizer/1":
                raise ValueError("missing format tag")
            return cls(
                data["vocabulary"],
                sequence_length=data["sequence_length"],
                split=data["split"],
                lowercase=data["lowercase"],
            )
        except FileNotFoundError:
            raise DataError(f"Vocabulary file not found: {path!r}.") from None
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{path!r} is not a tfmm tokenizer file ({e}).") from None
