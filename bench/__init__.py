"""Benchmarks: this pipeline beside TFX's reference taxi pipeline (bench),
at scale (scale), on wide tables (wide), beside a default gradient-boosted
model on held-out rows (holdout), and the REST server under load
(serving_load). See bench/README.md."""
