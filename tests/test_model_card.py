"""The model card: its view model, JSON and HTML, then a real pushed model.

Unit tests build a `ModelCard` by hand and check the JSON (values, NaN as
null, the considerations' defaults), the HTML (escaping, nothing loaded
from outside) and the atomic write; and that the dataset config's
`intended_use` and `limitations` reach the spec but not the components'
`custom_config`.

The e2e tests read the card the shared `e2e_run` wrote into its pushed
model's folder, compare it with ML Metadata and the statistics, and open
the HTML in headless Chromium, offline.
"""

import dataclasses
import json
import os
import pathlib
import re

import pytest
import yaml

from models import features
from pipeline.definition import dataset_config
from pipeline.inspection import model_card
from pipeline.inspection import report
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from tests import pipeline_state
from tests.conftest import E2E_TRAIN_STEPS
from tests.conftest import PIPELINE_NAME
from tests.test_report import _browse
from tests.test_report import _visible_text
from tests.test_report import chromium  # noqa: F401  (the fixture)

EVIL = '<script>alert(1)</script>'


def _card(**overrides) -> model_card.ModelCard:
  fields = dict(
      model=model_card.ModelSection(
          name='taxi', pipeline_name='tabular-taxi',
          run_id='2026-01-01T00:00:00.000001', version='1767225600',
          pushed_to='/out/serving_model/1767225600',
          pushed_at='2026-01-01T00:10:00+00:00', task='binary',
          label='big_tipper', classes=('0', '1'),
          features={'log': ('fare',), 'categorical': ('payment_type',)},
          mlmd_store='/out/metadata.sqlite',
          mlmd_ids={'model': 16, 'blessing': 18, 'push': 20}),
      data=model_card.DataSection(
          sources=('data/taxi_sample', '*'), input_note='1 file(s), 9 bytes',
          span=None, rows={'eval': 214, 'test': 202, 'train': 1584},
          schema_file='/repo/schema/taxi/schema.pbtxt',
          schema_sha256='ab' * 32, schema_artifact_id=2),
      training={'train_steps': 300, 'per_replica_batch_size': 128,
                'model': {'hidden_units': [64, 32]}},
      evaluation=model_card.EvaluationSection(
          decision='BLESSED', reason='all thresholds met',
          metrics={'auc': 0.921, 'auc_diff': 0.004, 'example_count': 202.0},
          slices={'payment_type=Cash': {'auc': float('nan'),
                                        'example_count': 129.0},
                  'payment_type=Dispute': {'auc': 0.0,
                                           'majority_class_rate': 1.0}},
          thresholds=(report.ThresholdRow('auc', 'Overall', '≥ 0.9', 0.921,
                                          'pass'),),
          baseline=model_card.BaselineSection(
              12, '/out/Trainer/model/12', {'auc': 0.917})),
      intended_use='Analytics on tipping.',
      limitations=features.NOT_STATED)
  fields.update(overrides)
  return model_card.ModelCard(**fields)


def test_json_holds_the_card_with_nan_as_null():
  card = json.loads(model_card.to_json(_card()))
  assert card['format_version'] == model_card.FORMAT_VERSION
  assert card['model']['version'] == '1767225600'
  assert card['model']['mlmd_ids'] == {'model': 16, 'blessing': 18,
                                       'push': 20}
  assert card['data']['rows'] == {'eval': 214, 'test': 202, 'train': 1584}
  assert card['data']['schema_sha256'] == 'ab' * 32
  assert card['training']['model'] == {'hidden_units': [64, 32]}
  evaluation = card['evaluation']
  assert evaluation['decision'] == 'BLESSED'
  assert evaluation['metrics']['auc'] == 0.921
  assert evaluation['slices']['payment_type=Cash'] == {
      'auc': None, 'example_count': 129.0}
  assert evaluation['slices']['payment_type=Dispute']['auc'] == 0.0
  assert evaluation['thresholds'][0]['rule'] == '≥ 0.9'
  assert evaluation['baseline'] == {'artifact_id': 12,
                                    'uri': '/out/Trainer/model/12',
                                    'metrics': {'auc': 0.917}}
  assert card['considerations'] == {'intended_use': 'Analytics on tipping.',
                                    'limitations': features.NOT_STATED}


def test_html_shows_every_section_and_escapes():
  page = model_card.render(_card())
  text = _visible_text(page)
  for heading in ('Model card: taxi model 1767225600', 'Intended use',
                  'Limitations', 'Data', 'Rows per split', 'Training settings',
                  'Gate thresholds', 'Compared with the baseline',
                  'Metrics by slice'):
    assert heading in text, heading
  assert re.search(r'id="rows-train">1,584<', page)
  assert re.search(r'id="metric-auc">0.9210<', page)
  assert 'Analytics on tipping.' in text
  # Settings as JSON; AUC of a one-class slice is not a number to read.
  assert '<code>{&#34;hidden_units&#34;: [64, 32]}</code>' in page
  assert re.search(r'<td>payment_type=Dispute</td><td><span class="muted">'
                   r'n/a: one class</span></td>', page)
  assert re.search(r'<td>payment_type=Cash</td><td>–</td>', page)
  # A missing text is said to be missing, greyed.
  assert (f'<p class="text muted" id="limitations">{features.NOT_STATED}'
          in page)
  evil = model_card.render(_card(intended_use=EVIL, model=dataclasses.replace(
      _card().model, name=EVIL)))
  assert EVIL not in evil
  assert '&lt;script&gt;alert(1)&lt;/script&gt;' in evil


def test_html_loads_nothing_from_outside():
  page = model_card.render(_card())
  for pattern in (r'https?:', r'\bsrc\s*=', r'\bhref\s*=', r'<link\b',
                  r'<script\b', r'url\(', r'@import', r'<iframe\b'):
    assert not re.search(pattern, page, re.IGNORECASE), pattern


def test_no_baseline_is_said(tmp_path):
  card = _card(evaluation=dataclasses.replace(_card().evaluation,
                                              baseline=None))
  assert 'No baseline: no model had been blessed' in model_card.render(card)
  assert json.loads(model_card.to_json(card))['evaluation'][
      'baseline'] is None


def test_write_is_atomic_and_replaces(tmp_path):
  (tmp_path / model_card.CARD_JSON).write_text('old')
  html_path, json_path = model_card.write_card(_card(), str(tmp_path))
  assert json.loads(pathlib.Path(json_path).read_text())['model'][
      'name'] == 'taxi'
  assert pathlib.Path(html_path).read_text().startswith('<!DOCTYPE html>')
  # Only the two cards: no temporary file left behind.
  assert sorted(os.listdir(tmp_path)) == [model_card.CARD_HTML,
                                          model_card.CARD_JSON]
  assert oct(os.stat(json_path).st_mode & 0o777) == '0o644'


def test_a_failed_write_leaves_the_old_card(tmp_path, monkeypatch):
  (tmp_path / model_card.CARD_JSON).write_text('old')

  def broken(*unused_args, **unused_kwargs):
    raise OSError('disk full')

  monkeypatch.setattr(model_card, 'to_json',
                      lambda card: 'x' * 10)  # Written, then...
  monkeypatch.setattr(os, 'replace', broken)  # ...the rename fails.
  with pytest.raises(OSError, match='disk full'):
    model_card.write_card(_card(), str(tmp_path))
  assert (tmp_path / model_card.CARD_JSON).read_text() == 'old'
  assert os.listdir(tmp_path) == [model_card.CARD_JSON]


def test_no_card_without_a_push_of_this_run(tmp_path):
  run = run_model.Run(pipeline_name='p', run_id='r', create_time_ms=0,
                      executions=[])
  summary = run_summary.RunSummary(run_id='r', components=[],
                                   model_unchanged=True,
                                   serving_model=str(tmp_path))
  assert model_card.write_for_push(run, summary, features.DatasetSpec(
      name='x', label_key='y'), 'm') is None
  assert list(tmp_path.iterdir()) == []
  with pytest.raises(ValueError, match='pushed no model'):
    model_card.build_card(run, summary, features.DatasetSpec(
        name='x', label_key='y'), 'm')


# --- Dataset config: intended use and limitations ---------------------------


def test_considerations_come_from_the_dataset_config():
  taxi = dataset_config.load_named('taxi').spec
  assert taxi.intended_use.startswith('Predicts whether a Chicago taxi trip')
  assert 'Cash tips are not recorded' in taxi.limitations
  # Not model inputs: not in custom_config, so they change no cache key.
  assert not set(features.DOCUMENTATION_FIELDS) & set(taxi.to_dict())
  assert features.DatasetSpec.from_dict(taxi.to_dict()) == taxi
  bare = dataset_config.parse({'name': 'x', 'label': 'y', 'task': 'binary'})
  assert bare.spec.intended_use == features.NOT_STATED
  assert bare.spec.limitations == features.NOT_STATED
  assert 'intended_use' not in dataset_config.to_dict(bare)


def test_considerations_survive_a_yaml_round_trip():
  config = dataset_config.parse({'name': 'x', 'label': 'y', 'task': 'binary',
                                 'intended_use': 'Teaching.',
                                 'limitations': 'Small.'})
  again = dataset_config.parse(yaml.safe_load(yaml.safe_dump(
      dataset_config.to_dict(config))))
  assert (again.spec.intended_use, again.spec.limitations) == (
      'Teaching.', 'Small.')


@pytest.mark.parametrize('value', ['', '  ', 3, ['a']])
def test_considerations_must_be_text(value):
  with pytest.raises(ValueError, match='`limitations` must be text'):
    dataset_config.parse({'name': 'x', 'label': 'y', 'task': 'binary',
                          'limitations': value})


# --- End to end: the card of the e2e run's pushed model ----------------------


@pytest.fixture(scope='module')
def first_run(e2e_run) -> run_model.Run:
  store = run_model.open_store(e2e_run.metadata_path)
  return run_model.read_run(
      store, run_model.run_contexts(store, PIPELINE_NAME)[0], PIPELINE_NAME)


@pytest.mark.e2e
def test_the_pushed_model_has_its_card(e2e_run, first_run):
  pushed = pathlib.Path(first_run.pushed_destination)
  # The re-runs pushed nothing: one version, and only its run wrote a card.
  assert pipeline_state.pushed_versions(e2e_run.serving_model_dir) == [
      pushed]
  assert (pushed / model_card.CARD_HTML).is_file()
  card = json.loads((pushed / model_card.CARD_JSON).read_text())
  assert f'Model card: {pushed / model_card.CARD_HTML}' in (
      e2e_run.outputs[0].stdout)
  for later in e2e_run.outputs[1:]:
    assert 'Model card:' not in later.stdout
  summary = run_summary.summarize(first_run)
  # The Evaluator's metrics, overall and per slice.
  assert card['evaluation']['metrics'] == pytest.approx(summary.metrics)
  cash = summary.slice_metrics['payment_type=Cash']
  assert card['evaluation']['slices']['payment_type=Cash'][
      'binary_accuracy'] == pytest.approx(cash['binary_accuracy'])
  assert card['evaluation']['decision'] == 'BLESSED'
  assert card['evaluation']['reason'] == summary.blessing_reason
  assert card['evaluation']['baseline'] is None  # The first blessed model.
  # The rows per split are the statistics' counts.
  stats = run_summary.load_statistics(
      first_run.execution(run_model.STATISTICS_GEN).output('statistics'))
  assert card['data']['rows'] == {
      split: s.datasets[0].num_examples for split, s in stats.items()}
  assert sum(card['data']['rows'].values()) == 2000  # The sample's rows.
  schema = first_run.component('ImportSchemaGen')
  assert card['data']['schema_sha256'] == schema.proto.custom_properties[
      'schema_sha256'].string_value != ''
  assert card['training']['train_steps'] == E2E_TRAIN_STEPS
  assert card['training']['replicas_in_sync'] == 2
  assert card['model']['run_id'] == first_run.run_id
  assert card['model']['version'] == pushed.name
  assert card['model']['mlmd_ids']['model'] == first_run.execution(
      run_model.TRAINER).output('model').id
  taxi = dataset_config.load_named('taxi').spec
  assert card['considerations'] == {'intended_use': taxi.intended_use,
                                    'limitations': taxi.limitations}


@pytest.mark.e2e
def test_the_card_renders_offline_in_chromium(
    e2e_run, first_run, chromium, tmp_path):  # noqa: F811
  page = pathlib.Path(first_run.pushed_destination) / model_card.CARD_HTML
  dom = _browse(chromium, tmp_path / 'profile', '--dump-dom',
                page.resolve().as_uri()).stdout
  text = _visible_text(dom)
  summary = run_summary.summarize(first_run)
  assert f'Model card: taxi model {pathlib.Path(page).parent.name}' in text
  assert 'BLESSED' in text and 'Cash tips are not recorded' in text
  shown = re.search(r'id="metric-auc"[^>]*>([^<]+)<', dom)
  assert shown and shown.group(1) == f'{summary.metrics["auc"]:.4f}'
  assert re.search(r'id="rows-test"[^>]*>[0-9,]+<', dom)
