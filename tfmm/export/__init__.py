"""TFLite export, verification, benchmarking and inspection: not built yet."""
