"""The local runner with `pipeline.drift_gate` wired in, for the drift tests.

`pipeline/pipeline.py` does not call `drift_gate.add_to_pipeline` yet. This
script wraps `create_pipeline` exactly the way that call would, then runs
`runners/local_runner.py` unchanged. Once the pipeline wires the gate itself
the wrapper sees the DriftGate node and leaves the pipeline alone.

    python tests/drift_gate_runner.py <local_runner flags>
"""

import pathlib
import runpy
import sys

from models import keras_choice

LOCAL_RUNNER = pathlib.Path(__file__).resolve().parents[1] / 'runners' / (
    'local_runner.py')


def main() -> None:
  keras_choice.select_keras()
  # pylint: disable=g-import-not-at-top
  from pipeline import drift_gate
  from pipeline import pipeline as pipeline_lib

  create_pipeline = pipeline_lib.create_pipeline

  def with_drift_gate(config, metadata_connection_config=None):
    pipeline = create_pipeline(config, metadata_connection_config)
    nodes = {node.id: node for node in pipeline.components}
    if drift_gate.DRIFT_GATE not in nodes:
      components = list(pipeline.components)
      drift_gate.add_to_pipeline(
          components, nodes[pipeline_lib.STATISTICS_GEN],
          nodes[pipeline_lib.IMPORT_SCHEMA_GEN],
          after=nodes[pipeline_lib.ANOMALY_GATE],
          before=nodes[pipeline_lib.TRANSFORM],
          allowed_anomaly_types=config.gate.allowed_anomalies)
      # Re-setting the components prepends the pipeline's Beam args to every
      # Beam component a second time, which would change their cache keys;
      # put back the args they had.
      specs = {node.id: getattr(node, 'executor_spec', None)
               for node in components}
      beam_args = {node_id: list(spec.beam_pipeline_args)
                   for node_id, spec in specs.items()
                   if hasattr(spec, 'beam_pipeline_args')}
      pipeline.components = components
      for node_id, args in beam_args.items():
        specs[node_id].beam_pipeline_args = args
    return pipeline

  pipeline_lib.create_pipeline = with_drift_gate
  sys.argv = [str(LOCAL_RUNNER)] + sys.argv[1:]
  runpy.run_path(str(LOCAL_RUNNER), run_name='__main__')


if __name__ == '__main__':
  main()
