"""The model card of a pushed model: JSON and HTML, inside its version folder.

    <output-dir>/serving_model/<version>/model_card.json
    <output-dir>/serving_model/<version>/model_card.html

TF Serving ignores the extra files. A card is written only for the model
the run itself pushed, never into an earlier model's folder. It holds:

  * the model: dataset, task, label, pipeline run, pushed version and path,
    the MLMD ids of the model, blessing and push;
  * the data: sources, span, row counts per split (from the statistics),
    the curated schema's file, SHA-256 and MLMD id;
  * the training settings the Trainer ran with;
  * the Evaluator's metrics overall and per slice, the gate decision with
    its thresholds, and the baseline model compared, with its metrics;
  * intended use and limitations, from the dataset config.

Everything but the last item is read from MLMD (the Trainer's, the
ExampleGen's and the Pusher's recorded properties) and from the
artifacts (statistics, evaluation, `training_info.json`), through the read
model. `build_card` makes a `ModelCard` of plain values; `to_json` and
`render` turn it into the two files, which `write_card` writes atomically.
The HTML page is plain HTML and CSS: no script, nothing loaded from
outside, so it renders offline.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import math
import os
import sys
import tempfile
from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Tuple

import jinja2
import tensorflow_model_analysis as tfma

from models import features
from models import treatments
from pipeline.facts import components as component_ids
from pipeline.facts import files
from pipeline.facts import metadata_location
from pipeline.inspection import report
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary

CARD_JSON = 'model_card.json'
CARD_HTML = 'model_card.html'
TEMPLATE = 'model_card.html.j2'
# The JSON layout's version; a change that removes or renames a key bumps it.
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ModelSection:
  """Which model this is and where it came from."""
  name: str
  pipeline_name: str
  run_id: str
  version: str
  pushed_to: str
  pushed_at: str
  task: str
  label: str
  classes: Tuple[str, ...]
  features: Mapping[str, Tuple[str, ...]]
  mlmd_store: str
  mlmd_ids: Mapping[str, int]
  # The model family and the eval scores it was chosen on
  # (models/model_choice.py); '' for models pushed before the families.
  family: str = ''


@dataclasses.dataclass(frozen=True)
class DataSection:
  """What the model was trained and judged on."""
  sources: Tuple[str, ...]
  input_note: str
  span: Optional[str]  # '3', or '1-3' for a range of spans.
  rows: Mapping[str, int]
  schema_file: str
  schema_sha256: str
  schema_artifact_id: Optional[int]


@dataclasses.dataclass(frozen=True)
class BaselineSection:
  """The blessed model the candidate was compared with."""
  artifact_id: int
  uri: str
  metrics: Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class EvaluationSection:
  """The Evaluator's verdict on the test split.

  `sentence` is the verdict in plain words; `decision_threshold` a binary
  model's threshold on P(positive) and how it was chosen ('' otherwise).
  """
  decision: str
  reason: str
  metrics: Mapping[str, float]
  slices: Mapping[str, Mapping[str, float]]
  thresholds: Tuple[report.ThresholdRow, ...]
  baseline: Optional[BaselineSection]
  sentence: str = ''
  decision_threshold: str = ''

  @property
  def columns(self) -> Tuple[str, ...]:
    return report.metric_columns(self.metrics)


@dataclasses.dataclass(frozen=True)
class ModelCard:
  """Everything the card shows, as plain values."""
  model: ModelSection
  data: DataSection
  training: Mapping[str, Any]
  evaluation: EvaluationSection
  intended_use: str
  limitations: str

  @property
  def title(self) -> str:
    return f'{self.model.name} model {self.model.version}'


# --- Reading: MLMD and artifacts into a card --------------------------------


def _json_property(execution: Optional[run_model.Execution], key: str
                   ) -> Dict[str, Any]:
  """A JSON exec property ('custom_config', 'train_args'); {} if absent."""
  if execution is None or key not in execution.proto.custom_properties:
    return {}
  text = execution.proto.custom_properties[key].string_value
  try:
    value = json.loads(text) if text else {}
  except ValueError:
    return {}
  return value if isinstance(value, dict) else {}


def _string_property(execution: Optional[run_model.Execution], key: str
                     ) -> str:
  if execution is None or key not in execution.proto.custom_properties:
    return ''
  return execution.proto.custom_properties[key].string_value


def _artifact_string(artifact, key: str) -> str:
  if artifact is None or key not in artifact.custom_properties:
    return ''
  return artifact.custom_properties[key].string_value


def _iso(ms: int) -> str:
  return datetime.datetime.fromtimestamp(
      ms / 1000, datetime.timezone.utc).isoformat(timespec='seconds')


def _sha256(folder: str) -> str:
  path = os.path.join(folder, files.SCHEMA_FILE)
  if not os.path.isfile(path):
    return ''
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


def row_counts(run: run_model.Run) -> Dict[str, int]:
  """Examples per split, from StatisticsGen's statistics; {} without."""
  stats_gen = run.execution(run_model.STATISTICS_GEN)
  artifact = stats_gen.output('statistics') if stats_gen else None
  if artifact is None:
    return {}
  return {split: int(stats.datasets[0].num_examples) if stats.datasets
          else 0
          for split, stats in sorted(
              run_summary.load_statistics(artifact).items())}


def _data_section(run: run_model.Run, summary: run_summary.RunSummary
                  ) -> DataSection:
  example_gen = run.execution(run_model.EXAMPLE_GEN_SUFFIX)
  data = run.chain()[0]
  patterns = [split.get('pattern', '') for split in
              _json_property(example_gen, 'input_config').get('splits', [])]
  sources = []
  if data.location not in ('', '-', '?'):
    sources.append(metadata_location.mask_url(data.location))
  sources.extend(p for p in patterns if p)
  schema = run.component(component_ids.IMPORT_SCHEMA_GEN)
  schema_artifact = (schema.output(run_summary.SCHEMA_KEY) if schema
                     else None)
  sha = _string_property(schema, 'schema_sha256') or (
      _sha256(schema_artifact.uri) if schema_artifact is not None else '')
  return DataSection(
      sources=tuple(sources),
      input_note=data.note,
      span=summary.span_flag(),
      rows=row_counts(run),
      schema_file=_string_property(schema, 'schema_file'),
      schema_sha256=sha,
      schema_artifact_id=(schema_artifact.id if schema_artifact is not None
                          else None))


def training_settings(run: run_model.Run,
                      summary: run_summary.RunSummary) -> Dict[str, Any]:
  """What the Trainer ran with: its recorded args and config, and how it
  trained (replicas, global batch), from `training_info.json`."""
  trainer = run.execution(run_model.TRAINER)
  custom = _json_property(trainer, 'custom_config')
  settings: Dict[str, Any] = {
      'train_steps': _json_property(trainer, 'train_args').get('num_steps'),
      'eval_steps': _json_property(trainer, 'eval_args').get('num_steps'),
  }
  settings.update(custom.get('training') or {})
  settings['code_version'] = custom.get('code_version')
  # How it trained: replicas, devices, global batch, steps, a resumed
  # checkpoint, the tuned settings (--tune), ...
  settings.update(summary.training_info or {})
  return {k: v for k, v in settings.items() if v not in (None, {}, [])}


def _evaluation_section(run: run_model.Run,
                        summary: run_summary.RunSummary
                        ) -> EvaluationSection:
  uri = summary.evaluation_uri
  thresholds: Tuple[report.ThresholdRow, ...] = ()
  baseline = None
  if uri:
    eval_config = report.load_eval_config(uri)
    thresholds = report.threshold_rows(
        eval_config, tfma.load_validation_result(uri), summary.metrics,
        summary.slice_metrics)
    model = (run.blessed_by or run).baseline_model
    if model is not None and any(spec.is_baseline
                                 for spec in eval_config.model_specs):
      metrics, _ = run_summary.read_metrics(uri, model_name='baseline')
      baseline = BaselineSection(model.id, model.uri, metrics)
  decision = report.verdict(summary.blessed, summary.blessing_reason,
                            summary.blessing_sentence)
  return EvaluationSection(
      decision=decision.decision, reason=decision.reason,
      sentence=decision.sentence,
      decision_threshold=run_summary.decision_text(summary.decision),
      metrics=dict(summary.metrics),
      # Grouped by feature, numbers in numeric order, as in the report.
      slices={row.name: dict(row.values) for row in report.slice_rows(
          {}, summary.slice_metrics)[1:]},
      thresholds=thresholds, baseline=baseline)


def feature_groups(spec: features.DatasetSpec) -> Dict[str, Tuple[str, ...]]:
  """The model's input columns by treatment, as the dataset config groups
  them; a treatment's parameter beside each column ('hour (period 24)')."""
  groups = {}
  for treatment in treatments.CONFIG_ORDER:
    parameter = treatment.parameter
    entries = spec.entries(treatment)
    if entries:
      groups[treatment.key] = tuple(
          column if parameter is None
          else f'{column} ({parameter.name} {value})'
          for column, value in entries)
  return groups


def build_card(run: run_model.Run, summary: run_summary.RunSummary,
               spec: features.DatasetSpec, metadata: str) -> ModelCard:
  """The card of the model `run` pushed.

  Args:
    run: The run, read back from MLMD.
    summary: Its summary.
    spec: The dataset config's spec: the intended use and limitations
      (text that is not recorded in MLMD); the rest comes from MLMD.
    metadata: The MLMD store, as shown (password masked).

  Raises:
    ValueError: The run pushed no model.
  """
  pusher = run.execution(run_model.PUSHER)
  pushed = pusher.output('pushed_model') if pusher else None
  if pushed is None or not run.pushed_destination:
    raise ValueError(f'Run {run.run_id} pushed no model: no model card.')
  trainer = run.execution(run_model.TRAINER)
  dataset = _json_property(trainer, 'custom_config').get('dataset')
  recorded = features.DatasetSpec.from_dict(dataset) if dataset else spec
  ids = {link.stage: link.artifact_id for link in run.chain()
         if link.artifact_id is not None}
  model = ModelSection(
      name=recorded.name, pipeline_name=run.pipeline_name,
      run_id=run.run_id,
      version=_artifact_string(pushed, 'pushed_version') or os.path.basename(
          run.pushed_destination),
      pushed_to=run.pushed_destination,
      pushed_at=_iso(pusher.proto.last_update_time_since_epoch),
      task=recorded.task, label=recorded.label_key,
      classes=recorded.classes,
      features=feature_groups(recorded),
      mlmd_store=metadata, mlmd_ids=ids,
      family=(summary.chosen_model.note() if summary.chosen_model else ''))
  return ModelCard(
      model=model, data=_data_section(run, summary),
      training=training_settings(run, summary),
      evaluation=_evaluation_section(run, summary),
      intended_use=spec.intended_use, limitations=spec.limitations)


# --- Output: JSON and HTML ---------------------------------------------------


def _plain(value: Any) -> Any:
  """JSON-compatible values; NaN and infinities become null."""
  if isinstance(value, float):
    return value if math.isfinite(value) else None
  if isinstance(value, Mapping):
    return {str(k): _plain(v) for k, v in value.items()}
  if isinstance(value, (tuple, list)):
    return [_plain(v) for v in value]
  return value


def to_dict(card: ModelCard) -> Dict[str, Any]:
  """The card's JSON structure (FORMAT_VERSION)."""
  evaluation = card.evaluation
  return _plain({
      'format_version': FORMAT_VERSION,
      'model': dataclasses.asdict(card.model),
      'data': dataclasses.asdict(card.data),
      'training': card.training,
      'evaluation': {
          'split': 'test',
          'decision': evaluation.decision,
          'reason': evaluation.reason,
          'sentence': evaluation.sentence,
          'decision_threshold': evaluation.decision_threshold,
          'metrics': evaluation.metrics,
          'slices': evaluation.slices,
          'thresholds': [dataclasses.asdict(row)
                         for row in evaluation.thresholds],
          'baseline': (dataclasses.asdict(evaluation.baseline)
                       if evaluation.baseline is not None else None),
      },
      'considerations': {'intended_use': card.intended_use,
                         'limitations': card.limitations},
  })


def to_json(card: ModelCard) -> str:
  return json.dumps(to_dict(card), indent=2, allow_nan=False) + '\n'


@functools.lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
  env = report.new_environment()
  env.filters['setting'] = setting_text
  return env


def setting_text(value: Any) -> str:
  """A training setting as shown: text as is, the rest as JSON."""
  return value if isinstance(value, str) else json.dumps(value)


def render(card: ModelCard) -> str:
  """The card's HTML page (no I/O but the templates)."""
  return _environment().get_template(TEMPLATE).render(
      card=card, not_stated=features.NOT_STATED)


def _write_atomically(path: str, text: str) -> None:
  """Writes a temporary file beside `path`, then renames it over `path`."""
  folder = os.path.dirname(path)
  handle, temporary = tempfile.mkstemp(
      dir=folder, prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
  try:
    with os.fdopen(handle, 'w', encoding='utf-8') as f:
      f.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
  except BaseException:
    if os.path.exists(temporary):
      os.remove(temporary)
    raise


def write_card(card: ModelCard, folder: Optional[str] = None
               ) -> Tuple[str, str]:
  """Writes model_card.json and model_card.html, each atomically.

  Args:
    card: From `build_card`.
    folder: Where; by default the pushed model's folder.

  Returns:
    (HTML path, JSON path).
  """
  folder = folder or card.model.pushed_to
  html_path = os.path.join(folder, CARD_HTML)
  json_path = os.path.join(folder, CARD_JSON)
  _write_atomically(json_path, to_json(card))
  _write_atomically(html_path, render(card))
  return html_path, json_path


def write_for_push(run: run_model.Run, summary: run_summary.RunSummary,
                   spec: features.DatasetSpec, metadata: str
                   ) -> Optional[Tuple[str, str]]:
  """The card of the model this run pushed, in its folder.

  Prints where it went, or one warning line when the folder cannot be
  written to (the run goes on).

  Returns:
    (HTML path, JSON path); None when the run pushed nothing (not blessed,
    or the model was unchanged), pushed to a remote file system, or the
    card could not be written.
  """
  pushed = run.pushed_destination
  if not pushed or summary.model_unchanged or not os.path.isdir(pushed):
    return None
  try:
    paths = write_card(build_card(run, summary, spec, metadata), pushed)
  # A folder that cannot be written to, an artifact that cannot be read, a
  # template that does not render: the run and its push stand.
  except (OSError, ValueError, jinja2.TemplateError) as e:
    print(f'WARNING: could not write the model card into {pushed}: '
          f'{type(e).__name__}: {e}. The pushed model is unaffected.',
          file=sys.stderr, flush=True)
    return None
  print(f'Model card: {paths[0]} (and {CARD_JSON})', flush=True)
  return paths
