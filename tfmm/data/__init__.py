"""Data: synthetic test data now; tf.data pipelines and the bundled dataset next.

Example:
    >>> x, y = tfmm.data.make_synthetic(32, image_shape=(28, 28, 1))
"""

from tfmm.data.synthetic import make_synthetic

__all__ = ["make_synthetic"]
