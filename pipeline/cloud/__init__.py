"""Dataflow and Vertex AI (Kubeflow Pipelines v2): settings, compile, submit."""
