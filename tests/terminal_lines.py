"""What a default local run may print: the project's own lines, exactly.

A default run (`runners/local_runner.py` without `--verbose`) sends what the
libraries say to its log file (`pipeline/local/run_log.py`); its terminal
holds only these lines, and `stray_lines` returns every other one:

- the input check: `Input check passed: ...`, once per checked folder
  (`span-3: Input check passed: ...` for a range of spans);
- progress: `[ 7/14] Transform   started`, then `complete 58.2s`,
  `cached 0.0s` or `FAILED 1.0s` (`pipeline/local/progress.py`);
- Keras' epoch lines, as the Trainer fits with verbose=2: `Epoch 2/3` and
  `100/100 - 3s - loss: 0.2131 - auc: 0.9482 - ... - 3s/epoch - 27ms/step`;
- the project's own warnings, `WARNING: DriftGate: ...`: exactly those the
  caller expects of the run, nothing else that starts with `WARNING:`;
- the summary: exactly the lines `format_summary` makes of the run read
  back from MLMD (the caller passes them), then one line each for the
  report, the model card, MLflow (and how to browse a local store and
  serve its new version) and the log file, naming files of the run's
  output dir;
- zero-config runs: the profiling note, the draft's description (exactly,
  as `dag.describe_draft` makes it of the drafted config) and the two
  draft paths.

A shape is anchored at both ends and names the project's own words, paths
or formats, so a library line cannot pass by resembling one: TensorFlow's
`E external/...` and `W0000 ...` lines, `WARNING:absl:...` records,
`.../x.py:155: RuntimeWarning: ...` warnings and their source lines,
`Instructions for updating:` and tracebacks all fail.
"""

from __future__ import annotations

import pathlib
import re
from typing import Iterable
from typing import List
from typing import Sequence

PROGRESS = re.compile(
    r'\[\s*\d+/\d+\] [A-Za-z]\w* +(?:started|complete|cached|FAILED|canceled)'
    r'(?: +\d+\.\ds)?')
INPUT_CHECK = re.compile(r'(?:span-\d+: )?Input check passed: .+\.')
EPOCH = re.compile(r'Epoch \d+/\d+')
_VALUE = r'-?(?:\d+\.\d+(?:e[-+]\d+)?|nan|inf)'
KERAS_EPOCH_END = re.compile(
    rf'\d+/\d+ - \d+m?s - loss: {_VALUE}(?: - \w+: {_VALUE})*'
    r' - \d+m?s/epoch - \d+(?:s|ms|us)/step')
PROFILING = ('Zero-config run: profiling the data to draft a schema and a '
             'dataset config.')


def _tail_shapes(output_dir: pathlib.Path) -> List[re.Pattern]:
  """The lines after the summary, naming files of this output dir."""
  out = re.escape(str(output_dir))
  return [re.compile(shape) for shape in (
      rf'Report: {out}/reports/run-[^/]+\.html',
      rf'Model card: {out}/serving_model/\d+/model_card\.html '
      r'\(and model_card\.json\)',
      r'MLflow: run [0-9a-f]{32} \(experiment [\w.-]+\) in \S+'
      r'(?:; registered model [\w.-]+ version \d+ \(alias champion\))? '
      r'\[\d+\.\d s at the end of the run\]',
      r'  Browse it: mlflow ui --backend-store-uri \S+',
      r'  Serve it: PATH=\S+:\$PATH MLFLOW_TRACKING_URI=\S+ mlflow models '
      r'serve -m models:/[\w.-]+/\d+ --env-manager local --port \d+',
      rf'Log: {out}/logs/run-[\dT-]+\.log',
  )]


def stray_lines(output: str, output_dir: pathlib.Path,
                exact: Iterable[str] = ()) -> List[str]:
  """The lines of `output` that are not the project's own (module doc).

  Args:
    output: What the run printed (stdout and stderr, in either order).
    output_dir: The run's --output-dir.
    exact: Lines allowed as they are: the summary, the expected project
      warnings, a draft's description.
  """
  allowed = set(exact)
  shapes = [PROGRESS, INPUT_CHECK, EPOCH, KERAS_EPOCH_END,
            *_tail_shapes(output_dir)]
  return [line for line in output.splitlines()
          if line not in allowed and line != PROFILING
          and not any(shape.fullmatch(line) for shape in shapes)]


def draft_lines(description: str, draft_dir: pathlib.Path,
                config_file: str, schema_file: str) -> Sequence[str]:
  """A zero-config run's lines about its drafts."""
  return [*description.splitlines(),
          f'Draft dataset config: {draft_dir / config_file}',
          f'Draft schema: {draft_dir / schema_file}']
