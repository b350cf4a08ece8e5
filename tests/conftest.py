import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfmm  # noqa: E402,F401  (before TensorFlow: selects Keras 2)
