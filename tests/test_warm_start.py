"""Warm start (models/warm_start.py) on two real tf.Transform outputs.

Two tiny datasets are analyzed by the real `preprocessing_fn`: the second
reorders the vocabularies by frequency (the ids of the same tokens change),
adds tokens (one of them the missing-value token), drops one, and moves the
bucket boundaries. A model saved as the Trainer saves it seeds a new model
built on the second output, and the tests check the rows token by token,
the dense layers, that the warm-started model answers exactly as the
previous one, and that each incompatible case starts cold with its reason
and touches no weight.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import tempfile
from typing import List
from typing import Optional

import apache_beam as beam
from ml_metadata.proto import metadata_store_pb2
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import metadata_io
from tensorflow_transform.tf_metadata import schema_utils

from models import checkpoints
from models import features
from models import model as model_lib
from models import model_config as model_config_lib
from models import preprocessing
from models import train
from models import warm_start
from pipeline import flags as cli
from pipeline.definition import config as config_lib
from pipeline.definition import dataset_config
from pipeline.inspection import run_model
from pipeline.local import warm_start_source
from tests.conftest import PIPELINE_NAME
from tests.conftest import SAMPLE_DATA

SPEC = features.DatasetSpec(
    name='tiny', label_key='y', categorical_features=('color',),
    integer_categorical_features=('area',), bucket_features=('lat',),
    num_buckets=4, oov_buckets=3)
CONFIG = model_config_lib.ModelConfig(hidden_units=(8, 4), dropout=0.0)
SPEC_TAXI = dataset_config.load_named('taxi').spec
RAW_SPEC = {
    'color': tf.io.VarLenFeature(tf.string),
    'area': tf.io.VarLenFeature(tf.int64),
    'lat': tf.io.VarLenFeature(tf.float32),
    'y': tf.io.FixedLenFeature([1], tf.int64),
}
# Token -> rows. Before: red > green > blue > gone. Now: blue > green > red,
# plus violet and missing values (the '__missing__' token); 'gone' is gone.
BEFORE_COLORS = {'red': 10, 'green': 6, 'blue': 4, 'gone': 2}
NOW_COLORS = {'blue': 12, 'green': 6, 'red': 3, 'violet': 2, None: 2}
BEFORE_AREAS = {7: 9, 3: 8, 12: 5}
NOW_AREAS = {12: 10, 3: 9, 7: 4, 40: 2}


def _rows(colors, areas, lat_low, lat_high, seed):
  rng = np.random.default_rng(seed)
  color_list = [c for c, n in colors.items() for _ in range(n)]
  area_list = [a for a, n in areas.items() for _ in range(n)]
  count = max(len(color_list), len(area_list))
  color_list += color_list[:count - len(color_list)]
  area_list += area_list[:count - len(area_list)]
  rows = []
  for i in range(count):
    color = color_list[i]
    rows.append({'color': [color.encode()] if color else [],
                 'area': [area_list[i]],
                 'lat': [float(rng.uniform(lat_low, lat_high))],
                 'y': [i % 2]})
  return rows


def _analyze(rows, out: pathlib.Path, tmp: str) -> tft.TFTransformOutput:
  """The real preprocessing_fn, analyzed and written as Transform writes it."""
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec(RAW_SPEC))
  with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=tmp):
    data = pipeline | 'Rows' >> beam.Create(rows)
    transform_fn = (data, metadata) | 'Analyze' >> tft_beam.AnalyzeDataset(
        lambda inputs: preprocessing.preprocessing_fn(
            inputs, {'dataset': SPEC.to_dict()}))
    _ = transform_fn | 'Write' >> tft_beam.WriteTransformFn(str(out))
  # The raw metadata, which TFX's Transform writes beside them.
  metadata_io.write_metadata(metadata, str(out / 'metadata'))
  return tft.TFTransformOutput(str(out))


def _build(output: tft.TFTransformOutput,
           config: model_config_lib.ModelConfig = CONFIG) -> tf.keras.Model:
  dense, categorical = train.model_inputs(output, SPEC)
  return model_lib.build_model(dense, categorical, config)


@dataclasses.dataclass
class Pair:
  before: tft.TFTransformOutput
  now: tft.TFTransformOutput
  before_dir: str
  now_dir: str
  old_model: tf.keras.Model
  model_dir: str
  root: pathlib.Path

  def source(self, **changes) -> warm_start.Source:
    values = dict(model_uri=self.model_dir,
                  transform_graph_uri=self.before_dir, run_id='run-1',
                  span=1, dataset=SPEC, model=CONFIG)
    values.update(changes)
    return warm_start.Source(**values)


@pytest.fixture(scope='module')
def pair():
  root = pathlib.Path(tempfile.mkdtemp(prefix='warm_start_'))
  before = _analyze(_rows(BEFORE_COLORS, BEFORE_AREAS, 0.0, 10.0, 1),
                    root / 'before', str(root / 'tmp1'))
  now = _analyze(_rows(NOW_COLORS, NOW_AREAS, 3.0, 14.0, 2), root / 'now',
                 str(root / 'tmp2'))
  tf.keras.utils.set_random_seed(1)
  old_model = _build(before)
  # Random values everywhere (biases too), so nothing matches by accident.
  rng = np.random.default_rng(0)
  for variable in old_model.weights:
    variable.assign(rng.normal(size=variable.shape).astype(np.float32))
  model_dir = root / 'model' / 'Format-Serving'
  # A Keras SavedModel, as the Trainer writes; without the traced functions
  # and serving signatures (15 s of tracing here), which warm start does
  # not read. The span runs (test_spans.py) read a Trainer's own model.
  old_model.save(str(model_dir), save_format='tf', save_traces=False)
  yield Pair(before, now, str(root / 'before'), str(root / 'now'),
             old_model, str(model_dir), root)
  shutil.rmtree(root, ignore_errors=True)


def _warm(pair: Pair, **changes):
  model = _build(pair.now)
  outcome = warm_start.warm_start(model, pair.source(**changes), SPEC,
                                  CONFIG, pair.now_dir)
  return model, outcome


def _weights(model: tf.keras.Model, layer: str) -> np.ndarray:
  return model.get_layer(layer).get_weights()[0]


def _raw(rows):
  """Raw feature tensors as Transform's graph takes them."""
  sparse = {key: tf.ragged.constant([r[key] for r in rows],
                                    dtype=RAW_SPEC[key].dtype).to_sparse()
            for key in ('color', 'area', 'lat')}
  return {**sparse, 'y': tf.constant([r['y'] for r in rows], tf.int64)}


def _predict(model, output, rows) -> np.ndarray:
  transformed = output.transform_raw_features(_raw(rows))
  return model({name: tf.reshape(transformed[name], [-1, 1])
                for name in model.input_names}).numpy()


# --- The fixture itself is a fair test. ---------------------------------------


def test_the_new_span_reorders_the_vocabularies(pair):
  before = pair.before.vocabulary_by_name('color')
  now = pair.now.vocabulary_by_name('color')
  assert before == [b'red', b'green', b'blue', b'gone']
  assert now[:3] == [b'blue', b'green', b'red']
  assert set(now[3:]) == {b'violet', features.MISSING_TOKEN.encode()}
  # By position, row 0 ('red' before) would become 'blue': a wrong start.
  assert before.index(b'red') != now.index(b'red')


def test_read_boundaries_bucketize_values_as_the_transform_graph_does(pair):
  values = [-1.0, 0.5, 2.0, 4.0, 5.5, 7.0, 9.9, 12.0, 20.0]
  rows = [{'color': [b'red'], 'area': [7], 'lat': [v], 'y': [0]}
          for v in values]
  for output, folder in ((pair.before, pair.before_dir),
                         (pair.now, pair.now_dir)):
    [boundaries] = warm_start.read_bucket_boundaries(folder, ['lat']).values()
    assert len(boundaries) == SPEC.num_buckets - 1
    got = output.transform_raw_features(_raw(rows))['lat_xf'].numpy()
    assert list(got) == list(np.searchsorted(boundaries, values,
                                             side='right'))
  before = warm_start.read_bucket_boundaries(pair.before_dir, ['lat'])['lat']
  now = warm_start.read_bucket_boundaries(pair.now_dir, ['lat'])['lat']
  assert not np.array_equal(before, now)


# --- Warm start copies by meaning. --------------------------------------------


def test_embedding_rows_follow_the_token_not_the_id(pair):
  model, outcome = _warm(pair)
  assert outcome.warm, outcome.cold_because
  for key in ('color', 'area'):
    before = pair.before.vocabulary_by_name(key)
    now = pair.now.vocabulary_by_name(key)
    for suffix in ('_embedding', '_wide'):
      layer = f'{key}_xf{suffix}'
      old, new = _weights(pair.old_model, layer), _weights(model, layer)
      for new_id, token in enumerate(now):
        if token in before:
          old_id = before.index(token)
        else:  # The OOV row the previous model used for this token.
          old_id = len(before) + int(tf.strings.to_hash_bucket_fast(
              token, SPEC.oov_buckets))
        np.testing.assert_array_equal(new[new_id], old[old_id],
                                      err_msg=f'{layer} {token!r}')
      np.testing.assert_array_equal(new[len(now):], old[len(before):])


def test_dense_layers_are_copied_as_they_are(pair):
  model, outcome = _warm(pair)
  assert outcome.warm, outcome.cold_because
  for layer in ('deep_0', 'deep_1', 'deep_logit'):
    for new, old in zip(model.get_layer(layer).get_weights(),
                        pair.old_model.get_layer(layer).get_weights(),
                        strict=True):
      np.testing.assert_array_equal(new, old)


def test_the_warm_model_answers_as_the_previous_one_on_every_new_token(pair):
  model, outcome = _warm(pair)
  assert outcome.warm, outcome.cold_because
  now = warm_start.read_bucket_boundaries(pair.now_dir, ['lat'])['lat']
  # In each new bucket the value its row comes from (the midpoint; just
  # inside the finite edge of the two outer buckets), and every token of
  # the new vocabularies, the missing value and an unknown one included.
  lats = [np.nextafter(now[0], np.float32(-np.inf))] + [
      (a + b) / 2 for a, b in zip(now, now[1:], strict=False)] + [now[-1]]
  colors = [[c] for c in pair.now.vocabulary_by_name('color')
            if c != features.MISSING_TOKEN.encode()] + [[]]
  areas = [int(a) for a in pair.now.vocabulary_by_name('area')] + [99]
  rows = [{'color': color, 'area': [area], 'lat': [float(lat)], 'y': [0]}
          for color in colors for area in areas for lat in lats]
  np.testing.assert_allclose(_predict(model, pair.now, rows),
                             _predict(pair.old_model, pair.before, rows),
                             rtol=1e-5, atol=1e-6)
  # A cold model of the same shape does not: the comparison can fail.
  cold = _build(pair.now)
  assert not np.allclose(_predict(cold, pair.now, rows),
                         _predict(pair.old_model, pair.before, rows),
                         atol=1e-3)


def test_the_outcome_says_what_was_copied(pair):
  model, outcome = _warm(pair)
  info = outcome.info()
  assert info['warm'] is True
  assert info['from_model'] == pair.model_dir
  assert (info['from_run'], info['from_span']) == ('run-1', 1)
  assert info['weights_copied'] == len(model.weights) == 12
  # Two vocabulary and one bucket feature, wide and deep: 6 tables.
  cards = [5 + 3, 4 + 3, 4 + 1]
  assert info['rows_copied'] == 2 * sum(cards)
  assert info['vocabularies'] == {
      'color': {'tokens': 5, 'known': 3, 'new': 2, 'gone': 1},
      'area': {'tokens': 4, 'known': 3, 'new': 1, 'gone': 0}}
  assert info['buckets_moved'] == ['lat']
  assert info['note'].startswith(
      f'from the model blessed in run run-1 (span 1), {pair.model_dir}: '
      '12 weights copied, embedding rows mapped by token (2 vocabularies; '
      'new tokens from their OOV rows: area +1, color +2), by bucket '
      'boundary (1 features whose boundaries moved)'), info['note']


# --- The row maps, by hand. -------------------------------------------------


def test_bucket_rows_take_the_previous_bucket_of_each_midpoint():
  rows = warm_start.bucket_rows(np.array([1., 2., 3.]), np.array([2., 3., 4.]),
                                num_buckets=4)
  # (-inf, 2) -> just under 2: bucket 1; [2, 3) -> 2.5: 2; [3, 4) -> 3.5: 3;
  # [4, inf) -> 4: 3; missing stays missing.
  assert list(rows) == [1, 2, 3, 3, 4]
  same = warm_start.bucket_rows(np.array([1., 1., 3.]), np.array([1., 1., 3.]),
                                num_buckets=4)
  assert list(same) == [0, 1, 2, 3, 4]


def test_vocabulary_rows_map_tokens_and_hash_new_ones():
  rows = warm_start.vocabulary_rows([b'a', b'b', b'c'], [b'c', b'a', b'z'],
                                    oov_buckets=2)
  z = 3 + int(tf.strings.to_hash_bucket_fast(b'z', 2))
  assert list(rows) == [2, 0, z, 3, 4]
  with pytest.raises(warm_start.Incompatible, match=r"1 new tokens \(e.g. 'z'"):
    warm_start.vocabulary_rows([b'a'], [b'a', b'z'], oov_buckets=0)


# --- Incompatible: cold, with the reason, no weight touched. -----------------


def _grown_vocabulary(pair: Pair) -> str:
  """The new Transform output, with 'color' grown to 20 tokens."""
  folder = pair.root / 'grown'
  if not folder.exists():
    shutil.copytree(pair.now_dir, folder)
    asset = folder / 'transform_fn' / 'assets' / 'color'
    asset.write_text('\n'.join(f'color{i}' for i in range(20)) + '\n')
  return str(folder)


COLD_CASES = {
    'grown vocabulary': (
        {}, "the vocabulary of 'color' grew from 4 to 20 tokens, which "
        'changes its embedding width from 4 to 5'),
    'feature set': (
        {'dataset': dataclasses.replace(SPEC, log_features=('fare',))},
        "the feature set differs: no longer ['fare']"),
    'treatment': (
        {'dataset': dataclasses.replace(
            SPEC, categorical_features=(),
            integer_categorical_features=('area', 'color'))},
        "feature 'color' is treated differently: integer_categorical "
        'before, categorical now'),
    'task': (
        {'dataset': dataclasses.replace(SPEC, task=features.REGRESSION)},
        'the task differs: regression before, binary now'),
    'layer sizes': (
        {}, "layer 'deep_0' has 8 units in the previous model, 16 now"),
    'model gone': (
        {'model_uri': '/nonexistent/model'},
        'cannot read the model blessed in run run-1 (span 1) at '
        '/nonexistent/model: '),
    'no model': (
        {'model_uri': '', 'none_because': 'no blessed model of a span '
         'before span 1'}, 'no blessed model of a span before span 1'),
}


@pytest.mark.parametrize('case', sorted(COLD_CASES))
def test_an_incompatible_model_starts_cold_and_says_why(pair, case):
  changes, reason = COLD_CASES[case]
  now_dir = _grown_vocabulary(pair) if case == 'grown vocabulary' else (
      pair.now_dir)
  config = (dataclasses.replace(CONFIG, hidden_units=(16, 4))
            if case == 'layer sizes' else CONFIG)
  model = _build(tft.TFTransformOutput(now_dir), config)
  fresh = [w.numpy().copy() for w in model.weights]
  outcome = warm_start.warm_start(model, pair.source(**changes), SPEC,
                                  config, now_dir)
  assert not outcome.warm
  assert outcome.cold_because.startswith(reason), outcome.cold_because
  assert outcome.note == f'none, started cold: {outcome.cold_because}'
  assert outcome.info()['cold_because'] == outcome.cold_because
  for weight, value in zip(model.weights, fresh, strict=True):
    np.testing.assert_array_equal(weight.numpy(), value)


def test_apply_reads_the_trainer_config_and_is_off_without_it(pair):
  model = _build(pair.now)
  assert warm_start.apply(model, {'seed': 0}, SPEC, CONFIG,
                          pair.now_dir) == {}
  training = {'warm_start': {
      'model_uri': pair.model_dir, 'transform_graph_uri': pair.before_dir,
      'run_id': 'run-1', 'span': 1, 'dataset': SPEC.to_dict(),
      'model': CONFIG.to_dict(), 'none_because': ''}}
  info = warm_start.apply(model, training, SPEC, CONFIG, pair.now_dir)
  assert info['warm_start']['warm'] is True
  np.testing.assert_array_equal(_weights(model, 'deep_0'),
                                _weights(pair.old_model, 'deep_0'))


# --- A killed run's checkpoint wins over warm start. -------------------------


def test_a_killed_runs_checkpoint_wins_over_warm_start(pair, tmp_path):
  """As in train.run_fn: warm start, then fit's backup callback restores.

  Keras' own callbacks are driven by hand, as `fit` calls them, without
  tracing a training step (a minute of CPU here).
  """
  backup = str(tmp_path / 'backup')
  killed, _ = _warm(pair)
  saver = checkpoints.backup_and_restore(backup)
  saver.set_model(killed)
  saver.on_train_begin()  # Nothing to restore yet.
  # What the killed run had trained by its first checkpoint.
  rng = np.random.default_rng(7)
  for variable in killed.weights:
    variable.assign(rng.normal(size=variable.shape).astype(np.float32))
  killed.optimizer.iterations.assign(train.STEPS_PER_EPOCH)
  saver.on_epoch_end(0)
  at_kill = [w.numpy().copy() for w in killed.weights]

  rerun, outcome = _warm(pair)
  assert outcome.warm
  warm_weights = [w.numpy().copy() for w in rerun.weights]
  restorer, recorder = checkpoints.backup_and_restore(backup), (
      checkpoints.ResumeRecorder())
  for callback in (restorer, recorder):  # fit's order in run_fn.
    callback.set_model(rerun)
    callback.on_train_begin()
  assert recorder.start_step == train.STEPS_PER_EPOCH
  for weight, value in zip(rerun.weights, at_kill, strict=True):
    np.testing.assert_array_equal(weight.numpy(), value)
  assert not np.array_equal(warm_weights[0], at_kill[0])


# --- Which model: chosen before the run (pipeline/local/warm_start_source). ---


def _blessed(run_id: str, span: int, fingerprint: str,
             trainer_config: Optional[str] = None) -> run_model.BlessedModel:
  number = int(run_id[1:])
  return run_model.BlessedModel(
      run_id=run_id,
      model=metadata_store_pb2.Artifact(
          id=number, uri=f'pipeline_root/Trainer/model/{number}'),
      transform_graph=metadata_store_pb2.Artifact(
          uri=f'pipeline_root/Transform/transform_graph/{number}'),
      span=span, data_fingerprint=fingerprint,
      trainer_config=trainer_config if trainer_config is not None else
      json.dumps({'dataset': SPEC.to_dict(),
                  'training': {'model': CONFIG.to_dict()}}))


def test_spans_start_from_the_latest_blessed_model_of_an_earlier_span():
  newest_first = [_blessed('r4', 3, 'f3'), _blessed('r3', 2, 'f2b'),
                  _blessed('r2', 2, 'f2'), _blessed('r1', 1, 'f1')]
  warm = warm_start_source.choose(newest_first, span=3, fingerprint='f3')
  assert warm == config_lib.WarmStart(
      resolved=True, model_uri='pipeline_root/Trainer/model/3/Format-Serving',
      transform_graph_uri='pipeline_root/Transform/transform_graph/3', run_id='r3',
      span=2, dataset=SPEC, model=CONFIG)
  # A re-run of span 2, after span 2 was blessed twice: still span 1's.
  assert warm_start_source.choose(newest_first, 2, 'f2').run_id == 'r1'
  first = warm_start_source.choose(newest_first, 1, 'f1')
  assert (first.model_uri, first.none_because) == (
      '', 'no blessed model of a span before span 1')
  assert warm_start_source.describe(first) == (
      'Warm start: none (no blessed model of a span before span 1); the '
      'Trainer starts cold.')
  assert warm_start_source.describe(warm) == (
      'Warm start: from the model blessed in run r3 (span 2), '
      'pipeline_root/Trainer/model/3/Format-Serving; the Trainer checks that it '
      'fits.')


def test_without_spans_the_latest_blessed_model_of_other_data():
  newest_first = [_blessed('r3', 0, 'f2'), _blessed('r2', 0, 'f2'),
                  _blessed('r1', 0, 'f1')]
  # An unchanged re-run of f2 names the model blessed before f2 arrived.
  assert warm_start_source.choose(newest_first, 0, 'f2').run_id == 'r1'
  assert warm_start_source.choose(newest_first, 0, 'f3').run_id == 'r3'
  assert warm_start_source.choose(newest_first[2:], 0, 'f1').none_because == (
      'no blessed model trained on other data: every blessed model was '
      'trained on the data this run reads')
  assert warm_start_source.choose([], 0, 'f1').none_because == (
      'no blessed model yet')


def test_an_unreadable_trainer_config_leaves_the_settings_unknown(pair):
  warm = warm_start_source.choose([_blessed('r1', 1, 'f1', '{}')], 2, 'f2')
  assert warm.model_uri and warm.dataset is None and warm.model is None
  model = _build(pair.now)
  outcome = warm_start.warm_start(
      model, warm_start.Source.from_dict(warm.to_dict()), SPEC, CONFIG,
      pair.now_dir)
  assert outcome.cold_because == (
      "the previous Trainer's dataset spec and model settings are unknown")


def _flags(*argv: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  cli.add_common_flags(parser)
  return parser.parse_args(['--data-root', str(SAMPLE_DATA), *argv])


def test_the_flag_asks_and_only_a_resolved_warm_start_reaches_the_trainer():
  def config(*argv):
    return cli.build_config(_flags(*argv), pipeline_root='/tmp/root',
                            serving_model_dir='/tmp/serving')

  # Off: the Trainer's config, and so its cache key, is as before.
  assert 'warm_start' not in config().training.trainer_custom_config()
  asked = config('--warm-start').training
  assert asked.warm_start == config_lib.WarmStart()
  with pytest.raises(ValueError, match='--warm-start must be resolved'):
    asked.trainer_custom_config()
  resolved = config_lib.WarmStart(
      resolved=True, model_uri='/m', run_id='r', span=1, dataset=SPEC,
      model=CONFIG)
  custom = dataclasses.replace(asked, warm_start=resolved
                               ).trainer_custom_config()
  assert warm_start.Source.from_dict(custom['warm_start']) == (
      warm_start.Source(model_uri='/m', run_id='r', span=1, dataset=SPEC,
                        model=CONFIG))


@pytest.mark.e2e
def test_without_spans_the_fingerprint_is_exampleGens_own(e2e_run, tmp_path):
  """On the e2e runs' store: the sample again gets no model, a copy does.

  The copy's files have other modification times, so ExampleGen would see
  other data, and the run would start from the sample's blessed model.
  """
  from pipeline.inspection import run_model as runs
  store = runs.open_store(e2e_run.metadata_path)
  blessed = list(runs.blessed_models(store, PIPELINE_NAME))
  assert len(blessed) == 1  # The first run; the re-runs' model is unchanged.
  config = cli.build_config(_flags(), pipeline_root='/tmp/root',
                            serving_model_dir='/tmp/serving')
  span, fingerprint = warm_start_source.todays_data(config)
  assert (span, fingerprint) == (0, blessed[0].data_fingerprint)
  again = warm_start_source.choose(blessed, span, fingerprint)
  assert again.model_uri == '' and 'every blessed model' in (
      again.none_because)

  copy = tmp_path / 'sample'
  shutil.copytree(SAMPLE_DATA, copy)
  os.utime(copy / 'data.csv', (1_000_000_000, 1_000_000_000))
  other = cli.build_config(_flags('--data-root', str(copy)),
                           pipeline_root='/tmp/root',
                           serving_model_dir='/tmp/serving')
  warm = warm_start_source.choose(
      blessed, *warm_start_source.todays_data(other))
  assert warm.run_id == blessed[0].run_id
  assert warm.model_uri == blessed[0].model.uri + '/Format-Serving'
  assert (pathlib.Path(warm.model_uri) / 'saved_model.pb').is_file()
  assert warm.dataset.name == 'taxi' and warm.span is None


# --- The span runs (tests/span_runs.py): span 1 cold, span 2 warm. -----------


def _span_runs_read(span_runs):
  from pipeline.inspection import summary as run_summary
  store = run_model.open_store(str(span_runs.output_dir / 'metadata.sqlite'))
  runs = [run_model.read_run(store, context, PIPELINE_NAME)
          for context in run_model.run_contexts(store, PIPELINE_NAME)]
  return store, runs, [run_summary.summarize(run) for run in runs]


def _vocabulary(transform_graph: str, key: str) -> List[bytes]:
  return tft.TFTransformOutput(transform_graph).vocabulary_by_name(key)


@pytest.mark.e2e
def test_span_1_starts_cold_and_says_why(span_runs):
  result = span_runs.results[0]
  assert result.returncode == 0, result.stderr[-3000:]
  assert ('Warm start: none (no blessed model of a span before span 1); '
          'the Trainer starts cold.\n') in result.stdout
  _, _, summaries = _span_runs_read(span_runs)
  reason = 'no blessed model of a span before span 1'
  assert summaries[0].training_info['warm_start'] == {
      'warm': False, 'note': f'none, started cold: {reason}',
      'cold_because': reason}
  assert f'  warm start: none, started cold: {reason}\n' in result.stdout
  assert summaries[0].blessed, 'span 1 must be blessed to seed span 2'


@pytest.mark.e2e
def test_span_2_warm_starts_from_span_1s_blessed_model(span_runs):
  """Its vocabularies grew and were reordered; rows follow the tokens."""
  result = span_runs.results[1]
  assert result.returncode == 0, result.stderr[-3000:]
  _, runs, summaries = _span_runs_read(span_runs)
  one, two = runs[:2]
  model = one.execution('Trainer').output('model').uri + '/Format-Serving'
  assert (f'Warm start: from the model blessed in run {one.run_id} (span 1), '
          f'{model}; the Trainer checks that it fits.\n') in result.stdout
  info = summaries[1].training_info['warm_start']
  assert info['warm'] is True, info
  assert (info['from_run'], info['from_span'], info['from_model']) == (
      one.run_id, 1, model)
  # 10 embedded features, deep and wide, and the dense tower: every weight.
  assert info['weights_copied'] == 26
  assert info['buckets_moved'] == list(SPEC_TAXI.bucket_features)
  # The token counts are those of the two Transform outputs' vocabularies.
  graphs = [run.execution('Trainer').input('transform_graph').uri
            for run in (one, two)]
  for key in (SPEC_TAXI.categorical_features +
              SPEC_TAXI.integer_categorical_features):
    before, now = (set(_vocabulary(graph, key)) for graph in graphs)
    assert info['vocabularies'][key] == {
        'tokens': len(now), 'known': len(now & before),
        'new': len(now - before), 'gone': len(before - now)}, key
  # Span 2 is a fresh draw of the trips: some vocabularies grew.
  assert sum(v['new'] for v in info['vocabularies'].values()) > 0
  note = summaries[1].training_info['warm_start']['note']
  assert note.startswith(f'from the model blessed in run {one.run_id} '
                         f'(span 1), {model}: 26 weights copied'), note
  assert f'  warm start: {note}\n' in result.stdout
  report = [line for line in result.stdout.splitlines()
            if line.startswith('Report: ')][-1][len('Report: '):]
  assert 'id="warm-start">from the model blessed in run' in (
      pathlib.Path(report).read_text(encoding='utf-8'))


@pytest.mark.e2e
def test_a_rerun_of_span_2_names_the_same_model_so_it_stays_cached(
    span_runs):
  """What a re-run of span 2 would resolve now, after spans 2 and 3 ran,
  is what span 2's Trainer got: the same custom_config, a cache hit."""
  store, runs, _ = _span_runs_read(span_runs)
  recorded = json.loads(runs[1].execution('Trainer').proto.custom_properties[
      'custom_config'].string_value)['training']['warm_start']
  config = cli.build_config(
      _flags('--data-root', str(span_runs.data_root), '--span', '2',
             '--warm-start'),
      pipeline_root='/tmp/root', serving_model_dir='/tmp/serving')
  span, fingerprint = warm_start_source.todays_data(config)
  assert span == 2
  again = warm_start_source.choose(
      run_model.blessed_models(store, PIPELINE_NAME), span, fingerprint)
  # As TFX stores custom_config: JSON.
  assert json.loads(json.dumps(again.to_dict())) == recorded
  assert again.span == 1
  # The drifted span 3 had resolved the model of a span before it.
  for result in span_runs.results[2:4]:
    assert 'Warm start: from the model blessed in run ' in result.stdout


def test_the_summary_and_the_report_show_the_warm_start():
  from pipeline.inspection import report
  from pipeline.inspection import summary as run_summary
  note = 'none, started cold: the task differs: regression before, binary now'
  info = {'replicas_in_sync': 1, 'devices': ['CPU:0'],
          'global_batch_size': 128,
          'warm_start': {'warm': False, 'note': note, 'cold_because': '...'}}
  summary = run_summary.RunSummary(run_id='r', components=[],
                                   training_info=info)
  assert f'\n  warm start: {note}' in run_summary.format_summary(summary)
  page = report.render(report.ReportView(
      pipeline_name='p', run_id='r', generated='now', metadata_path='m',
      verdict=report.verdict(None, ''),
      warm_start=run_summary.warm_start_note(info)))
  assert f'Warm start: <span id="warm-start">{note}</span>' in page
  without = dict(info, warm_start=None)
  assert 'warm start' not in run_summary.format_summary(
      dataclasses.replace(summary, training_info=without))
  assert run_summary.warm_start_note(without) == ''
