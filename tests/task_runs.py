"""Zero-config runs of the multiclass and regression tasks, in the background.

Each task runs as a new user would run it: the one command with `--label`
and `--task` on a CSV folder the repository does not hold (built from the
datasets scikit-learn ships, see tests/datasets.py).

The two pipeline runs take a few minutes but use mostly one core, so they
start in a thread as soon as pytest has collected a test that needs them
(`conftest.pytest_collection_finish`) and overlap the unit tests, which
`conftest.pytest_collection_modifyitems` puts first.

A third zero-config run trains on a synthetic table with a rare label
(4.6% positives) and gaps (`datasets.imbalanced_binary`): the gate must
bless it, with a decision threshold chosen on the eval split.

That a constant model is never blessed is proven end to end on taxi
(tests/test_gate.py), on the rare label and on the multiclass task: each of
the last two runs again with --drop-all-features, the rare label in its own
output dir (everything up to Transform cached), the multiclass task on a
copy of its outputs (so its first run's report stays the latest). A re-run
costs the Trainer and the Evaluator only. For regression the unit tests
prove that a constant scores an R-squared of at most 0
(tests/test_metrics.py) and that the gate requires more
(tests/test_config.py).
"""

import dataclasses
import pathlib
import shutil
import subprocess
from typing import Dict
from typing import Tuple

from tests import datasets

# Enough steps for both small datasets to clear their gates; the drafts
# would choose 200 (their lower clamp) on their own.
TRAIN_STEPS = '200'
# The regression run also tunes: a two-trial search (the defaults, then one
# random trial) of few steps each, before its Trainer
# (tests/test_tuning_e2e.py).
TUNED_TASK = 'regression'
TUNE_TRIALS = 2
TUNE_STEPS = 50
TUNE_ARGS = ('--tune', '--tune-trials', str(TUNE_TRIALS),
             '--tune-steps', str(TUNE_STEPS))
IMBALANCED = 'imbalanced'
POSITIVE_LABEL = 'yes'
# A model that only learns the base rate needs few steps to learn it.
CONSTANT_ARGS = ('--drop-all-features', '--train-steps', '100')
# results[task + CONSTANT]: that task's --drop-all-features re-run.
CONSTANT = '_constant'


@dataclasses.dataclass
class TaskRun:
  """One task's zero-config run."""
  data: datasets.TabularCsv
  output_dir: pathlib.Path
  first: subprocess.CompletedProcess

  @property
  def pipeline_name(self) -> str:
    return f'tabular-{pathlib.Path(self.data.data_root).name}'

  @property
  def draft_dir(self) -> pathlib.Path:
    return self.output_dir / 'draft'

  @property
  def metadata_path(self) -> str:
    return str(self.output_dir / 'metadata.sqlite')


def _run_task(data: datasets.TabularCsv, output_dir: pathlib.Path,
              extra_args: Tuple[str, ...] = ()) -> TaskRun:
  # Imported here: conftest imports this module.
  from tests import conftest
  first = conftest.run_local_pipeline(
      output_dir, ['--label', data.label, '--task', data.task,
                   '--train-steps', TRAIN_STEPS, *extra_args],
      data_root=pathlib.Path(data.data_root), check=False)
  return TaskRun(data, output_dir, first)


def run_tasks(root: pathlib.Path) -> Dict[str, TaskRun]:
  """The tasks, one after the other, under `root`, then the constant
  models' re-runs."""
  results = {}
  for task, make in (('multiclass', datasets.wine_multiclass),
                     ('regression', datasets.diabetes_regression),
                     (IMBALANCED, datasets.imbalanced_binary)):
    data = make(root / 'data' / make.__name__.split('_')[0])
    extra = TUNE_ARGS if task == TUNED_TASK else ()
    if task == IMBALANCED:
      extra = ('--positive-label', POSITIVE_LABEL)
    results[task] = _run_task(data, root / f'out-{task}', extra)
  imbalanced = results[IMBALANCED]
  results[IMBALANCED + CONSTANT] = _run_task(
      imbalanced.data, imbalanced.output_dir,
      ('--positive-label', POSITIVE_LABEL, *CONSTANT_ARGS))
  multiclass = results['multiclass']
  copy = root / 'out-multiclass-constant'
  shutil.copytree(multiclass.output_dir, copy)
  results['multiclass' + CONSTANT] = _run_task(multiclass.data, copy,
                                               CONSTANT_ARGS)
  return results
