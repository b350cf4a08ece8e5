"""Optimization (pruning, QAT, clustering, distillation): not built yet."""
