"""DirectRunner nodes get no sdist of TFX (pipeline/orchestration/
beam_dependencies.py); every other runner keeps TFX's own dependency flags."""

import pytest
from tfx.components.statistics_gen import executor as statistics_executor
from tfx.dsl.components.base import base_beam_executor
from tfx.utils import dependency_utils

from pipeline.facts import beam_runners
from pipeline.orchestration import beam_dependencies

DIRECT = ['--direct_running_mode=in_memory', '--direct_num_workers=1']
DATAFLOW = ['--runner=DataflowRunner', '--project=p', '--region=r']


@pytest.mark.parametrize('args, runner', [
    ([], None),
    (DIRECT, None),
    (['--runner=DirectRunner'], 'DirectRunner'),
    (['--runner', 'DataflowRunner', '--project=p'], 'DataflowRunner'),
    (['--runner=DirectRunner', '--runner=FlinkRunner'], 'FlinkRunner'),
])
def test_the_runner_is_read_from_the_args(args, runner):
  assert beam_runners.runner_of(args) == runner
  assert beam_runners.runs_in_process(args) is (runner in (None,
                                                           'DirectRunner'))


@pytest.mark.parametrize('name, here', [
    ('direct', True), ('DirectRunner', True), ('directrunner', True),
    ('SwitchingDirectRunner', True), ('dataflow', False),
    ('DataflowRunner', False), ('FlinkRunner', False),
])
def test_runner_names_match_as_beam_matches_them(name, here):
  assert beam_runners.runs_in_process([f'--runner={name}']) is here


@pytest.fixture
def built(monkeypatch, tmp_path):
  """The sdists TFX would build, recorded instead of built. TFX's own
  `make_beam_dependency_flags` first (an in-process run may have wrapped
  it already), whatever was there restored after the test."""
  current = dependency_utils.make_beam_dependency_flags
  monkeypatch.setattr(dependency_utils, 'make_beam_dependency_flags',
                      getattr(current, 'tfx_original', current))
  sdists = []

  def build() -> str:
    sdists.append(str(tmp_path / f'tfx_ephemeral-{len(sdists)}.tar.gz'))
    return sdists[-1]

  monkeypatch.setattr(dependency_utils, 'build_ephemeral_package', build)
  return sdists


def test_tfx_alone_builds_an_sdist_even_for_the_direct_runner(built):
  assert dependency_utils.make_beam_dependency_flags(DIRECT) == [
      *DIRECT, f'--extra_package={built[0]}']


def test_direct_runner_args_stay_as_they_are(built):
  beam_dependencies.skip_for_direct_runner()
  beam_dependencies.skip_for_direct_runner()  # Idempotent.
  assert dependency_utils.make_beam_dependency_flags(DIRECT) == DIRECT
  assert dependency_utils.make_beam_dependency_flags([]) == []
  assert not built
  # A Beam executor, as the launcher makes one for StatisticsGen.
  executor = statistics_executor.Executor(
      base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=DIRECT))
  assert not any(a.startswith('--extra_package')
                 for a in executor._beam_pipeline_args)
  assert not built


def test_other_runners_still_get_tfx_as_an_extra_package(built):
  beam_dependencies.skip_for_direct_runner()
  assert dependency_utils.make_beam_dependency_flags(DATAFLOW) == [
      *DATAFLOW, f'--extra_package={built[0]}']
  # A runner with its own dependency flag gets none added, as in TFX.
  own = [*DATAFLOW, '--setup_file=./setup.py']
  assert dependency_utils.make_beam_dependency_flags(own) == own
  assert len(built) == 1
