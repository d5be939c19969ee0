"""Benchmarks: this pipeline side by side with TFX's reference taxi pipeline."""
