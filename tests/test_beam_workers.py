"""`--beam-workers N` really runs Beam's DirectRunner in N worker processes.

Two halves, each cheap:
- Beam level: a small pipeline built with exactly the args the local runner
  produces (`cli.direct_runner_args`) records the pid of the process that
  ran each element. With N=2 the work runs in two child processes of this
  one; with N=1 it runs in this process.
- Runner level: `runners/local_runner.py --beam-workers N` puts those args
  into the pipeline's `beam_pipeline_args`, and TFX hands them to every
  Beam-based component. The pipeline itself is not run (local_run.run is
  replaced by a recorder); the end-to-end tests run it.
"""

import json
import os
import pathlib

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
import psutil
import pytest

from pipeline import flags as cli
from tests.conftest import SAMPLE_DATA
from tests.conftest import load_runner


def _run_and_record_pids(workers: int, out_dir: pathlib.Path):
  """Runs 200 elements through a shuffle.

  Returns:
    {pid: ancestor pids} of the processes that ran the elements.
  """
  prefix = out_dir / f'pids-{workers}'
  # cloudpickle ships the lambda by value, so the worker processes need not
  # import this test module and what it imports (dill would make them).
  options = PipelineOptions(cli.direct_runner_args(workers) +
                            ['--pickle_library=cloudpickle'])
  with beam.Pipeline(options=options) as p:
    _ = (p
         | 'Create' >> beam.Create(range(200))
         # The shuffle lets the runner split the next stage across workers.
         | 'Reshuffle' >> beam.Reshuffle()
         | 'RecordProcess' >> beam.Map(lambda _: json.dumps(
             [os.getpid(), [p.pid for p in psutil.Process().parents()]]))
         | 'Write' >> beam.io.WriteToText(str(prefix)))
  records = [json.loads(line) for path in out_dir.glob(f'pids-{workers}*')
             for line in path.read_text().splitlines()]
  assert len(records) == 200, f'expected 200 records, got {len(records)}'
  return {pid: tuple(ancestors) for pid, ancestors in records}


def test_two_workers_run_in_two_child_processes(tmp_path):
  processes = _run_and_record_pids(2, tmp_path)
  assert os.getpid() not in processes, 'work ran in the launching process'
  assert len(processes) == 2, (
      f'expected 2 worker processes, saw {sorted(processes)}')
  for pid, ancestors in processes.items():
    assert os.getpid() in ancestors, (
        f'worker {pid} was not started by this process: {ancestors}')


def test_one_worker_runs_in_process(tmp_path):
  assert set(_run_and_record_pids(1, tmp_path)) == {os.getpid()}


def test_worker_count_flags():
  assert cli.direct_runner_args(3) == ['--direct_running_mode=multi_processing',
                                       '--direct_num_workers=3']
  # Beam reads 0 as "one worker per core".
  assert cli.direct_runner_args(0)[-1] == '--direct_num_workers=0'
  with pytest.raises(ValueError, match='--beam-workers'):
    cli.direct_runner_args(-1)


def test_local_runner_passes_workers_to_every_beam_component(
    tmp_path, monkeypatch):
  from tfx.dsl.components.base import executor_spec

  from pipeline.definition import pipeline as pipeline_lib
  from pipeline.local import run as local_run
  calls = []
  monkeypatch.setattr(local_run, 'run',
                      lambda config, layout, **kwargs: calls.append(config)
                      or 0)
  exit_code = load_runner('local_runner').main(
      ['--beam-workers', '2', '--data-root', str(SAMPLE_DATA),
       '--output-dir', str(tmp_path / 'out')])
  assert exit_code == 0 and len(calls) == 1
  expected = cli.direct_runner_args(2)
  assert list(calls[0].beam_pipeline_args) == expected

  pipeline = pipeline_lib.create_pipeline(calls[0])
  beam_components = {c.id: c for c in pipeline.components
                     if isinstance(c.executor_spec,
                                   executor_spec.BeamExecutorSpec)}
  assert set(beam_components) >= {
      pipeline_lib.EXAMPLE_GEN, pipeline_lib.STATISTICS_GEN,
      pipeline_lib.TRANSFORM, pipeline_lib.EVALUATOR}
  for component_id, component in beam_components.items():
    args = component.executor_spec.beam_pipeline_args
    assert args[:len(expected)] == expected, (component_id, args)
