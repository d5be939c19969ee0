"""TFX's Tuner with an executor that keeps the whole search record.

TFX's Tuner executor writes the best settings (`best_hyperparameters`) and
the completed trials (`tuner_results.json`). The run summary and report
also need the trials that stopped at the time budget or failed, each
trial's time, why the search ended and whether tuning beat the defaults.
This executor runs TFX's own search and writes, then adds that record
(`models.hyperparameters.RECORD_FILE`) to the `tuner_results` artifact.

It also turns a search where every trial failed into one error that names
the first failure. TFX's executor would instead write a failed trial's
settings as the best (KerasTuner falls back to unfinished trials).

The component stays TFX's Tuner (`tfx.components.tuner.component.Tuner`,
same spec, inputs, outputs and MLMD type); only its executor differs, so it
compiles for Kubeflow V2 and Airflow like any TFX component.
"""

from __future__ import annotations

import os
from typing import Any
from typing import Dict
from typing import List

from absl import logging
from tfx import types
from tfx.components.tuner import component as tuner_component
from tfx.components.tuner import executor as tuner_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils

from models import hyperparameters as hp_lib
from models import tuning


class AllTrialsFailedError(RuntimeError):
  """Every trial of the search raised an error."""


class Executor(tuner_executor.Executor):
  """TFX's Tuner executor, plus the search record and the all-failed check."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    if tuner_executor.get_tune_args(exec_properties):
      raise ValueError('TuneArgs (parallel trials) is not supported by this '
                       'Tuner; remove tune_args.')
    tuner = tuner_executor.search(input_dict, exec_properties,
                                  self._get_tmp_dir(),
                                  print_tuning_summary=False)
    if not isinstance(tuner, tuning.BudgetedTuner):
      raise TypeError(f'tuner_fn must return a models.tuning.BudgetedTuner, '
                      f'got {type(tuner).__name__}.')
    record = tuner.search_record()
    if record.all_failed:
      first = record.trials[0]
      raise AllTrialsFailedError(
          f'All {len(record.trials)} tuning trial(s) failed; trial '
          f'{first.trial_id} ({hp_lib.describe(first.values)}): '
          f'{first.message}. Fix that error, or run without --tune.')
    tuner_executor.write_best_hyperparameters(tuner, output_dict)
    results_dir = artifact_utils.get_single_uri(
        output_dict[standard_component_specs.TUNER_RESULTS_KEY])
    io_utils.write_string_file(os.path.join(results_dir, hp_lib.RECORD_FILE),
                               record.to_json())
    logging.info('Tuning: %d trial(s) in %.1f s, stopped by the %s; %s.',
                 len(record.trials), record.seconds, record.stop_reason,
                 record.verdict())


def budgeted_tuner(**kwargs: Any) -> tuner_component.Tuner:
  """TFX's Tuner component with `Executor`; arguments as for Tuner."""
  component = tuner_component.Tuner(**kwargs)
  component.executor_spec = executor_spec.ExecutorClassSpec(Executor)
  return component
