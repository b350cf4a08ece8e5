"""Option values shared by the exporter and the command line (importing no TensorFlow)."""

MODES = ("float32", "dynamic", "float16", "int8", "int16x8")
PREFERENCES = ("size", "latency")
RNN_LAYOUTS = ("fused", "unrolled")
STRATEGIES = ("none", "mirrored", "multi-worker")
