"""Reading runs back: one MLMD read model, and the summary, report and lineage
views built on it. `python -m pipeline.inspection` lists runs and lineage."""
