"""ServingCheck: the candidate served by the REST server before the push.

Unit tests build a tiny binary SavedModel (two raw features, the serving
contract beside it) and run the real check on it: `python -m serving` in a
fresh process, test rows sent as JSON over HTTP, the answers compared with
serving_default's. A sound model passes with no difference. A contract that
leaves out a feature the model reads (the answers differ), one that
declares a wrong type (the server refuses the rows), and one whose outputs
are not the signature's (the server will not load the model) are blocked,
each with its reason; the comparison itself is checked on plain arrays.

The e2e test puts TFX's own Pusher behind the check, in a small pipeline
over the e2e run's artifacts: the e2e model with its contract cut down to
the required features is not pushed, and the version served before stays
as it was, while the same model intact is pushed.
"""

import copy
import json
import pathlib
import re
import shutil

import markupsafe
import numpy as np
import pytest
import tensorflow as tf
from tfx.components.util import model_utils
from tfx.types import standard_artifacts

from pipeline.components import serving_check
from pipeline.inspection import report
from pipeline.inspection import run_model
from pipeline.inspection import summary as run_summary
from pipeline.tracking import mlflow_log
from tests import pipeline_state
from tests.conftest import PIPELINE_NAME

THRESHOLD = 0.4
CONTRACT = {
    'format_version': 1, 'dataset': 'tiny', 'task': 'binary', 'label': 'y',
    'classes': ['0', '1'], 'signature': 'serving_default',
    'input': 'examples', 'outputs': ['classes', 'probability', 'scores'],
    'ignored': ['note'],
    'features': [
        {'name': 'c', 'dtype': 'string', 'required': False,
         'treatment': 'categorical', 'vocabulary': ['a', 'b']},
        {'name': 'x', 'dtype': 'float', 'required': True,
         'treatment': 'numeric', 'vocabulary': None}],
    'decision_threshold': THRESHOLD, 'decision_rule': 'set by the test'}
# (x, c, note, y); c None: an empty cell.
ROWS = [(0.1, 'a', 'n1', 0), (0.25, 'b', 'n2', 1), (0.9, None, 'n3', 1),
        (-1.5, 'b', 'n4', 0), (0.33, 'a', 'n5', 1), (0.5, 'b', 'n6', 1),
        (2.0, 'a', 'n7', 1)]


class TinyModel(tf.Module):
  """P(positive) = sigmoid(3x - 1 + 2 [c == 'b']), TF Serving's outputs."""

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve(self, examples):
    # x is required, c optional: parsed as the pipeline parses them.
    parsed = tf.io.parse_example(examples, {
        'x': tf.io.FixedLenFeature([1], tf.float32),
        'c': tf.io.VarLenFeature(tf.string),
    })
    c = tf.sparse.to_dense(tf.sparse.reset_shape(
        parsed['c'], [tf.shape(examples)[0], 1]), default_value='')
    logit = 3.0 * parsed['x'] - 1.0 + tf.where(tf.equal(c, 'b'), 2.0, 0.0)
    probability = tf.sigmoid(logit)
    classes = tf.tile(tf.constant([['0', '1']]), [tf.shape(examples)[0], 1])
    return {'classes': classes, 'probability': probability,
            'scores': tf.concat([1.0 - probability, probability], axis=1)}


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory) -> pathlib.Path:
  """The tiny SavedModel, saved once; copies get their own contracts."""
  folder = tmp_path_factory.mktemp('tiny') / 'model'
  module = TinyModel()
  tf.saved_model.save(module, str(folder),
                      signatures={'serving_default': module.serve})
  return folder


def _with_contract(model: pathlib.Path, target: pathlib.Path,
                   contract: dict) -> str:
  shutil.copytree(model, target)
  extra = target / 'assets.extra'
  extra.mkdir(exist_ok=True)
  (extra / 'serving_contract.json').write_text(json.dumps(contract))
  return str(target)


def _example(x, c, note, y) -> tf.train.Example:
  feature = {'x': tf.train.Feature(float_list=tf.train.FloatList(value=[x])),
             'note': tf.train.Feature(bytes_list=tf.train.BytesList(
                 value=[note.encode()])),
             'y': tf.train.Feature(int64_list=tf.train.Int64List(value=[y])),
             # A column the contract does not know: a client leaves it out.
             'stray': tf.train.Feature(int64_list=tf.train.Int64List(
                 value=[7]))}
  # An empty cell, as ExampleGen writes one: the key with no value.
  feature['c'] = tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[] if c is None else [c.encode()]))
  return tf.train.Example(features=tf.train.Features(feature=feature))


def _records():
  return [_example(*row).SerializeToString() for row in ROWS]


def expected_probability(x, c) -> float:
  return float(1 / (1 + np.exp(-(3 * np.float32(x) - 1 + 2 * (c == 'b')))))


# --- Rows and comparisons (no server) -------------------------------------


def test_a_row_is_what_a_client_sends():
  contract = serving_check.serving_contract.Contract.from_dict(CONTRACT, 't')
  assert serving_check.raw_row(_example(0.25, 'b', 'n2', 1), contract) == {
      'x': 0.25, 'c': 'b', 'note': 'n2'}
  # The empty cell is left out; the label and unknown columns are never sent.
  assert serving_check.raw_row(_example(0.9, None, 'n3', 1), contract) == {
      'x': pytest.approx(0.9), 'note': 'n3'}


def _reference(probabilities):
  p = np.asarray(probabilities, dtype=np.float32).reshape(-1, 1)
  return {'classes': np.array([[b'0', b'1']] * len(p)), 'probability': p,
          'scores': np.concatenate([1 - p, p], axis=1)}


def _answers(probabilities, threshold=THRESHOLD):
  return [{'classes': ['0', '1'], 'probability': [float(p)],
           'scores': [float(np.float32(1 - p)), float(p)],
           'decision': '1' if p >= threshold else '0'}
          for p in np.asarray(probabilities, dtype=np.float32)]


def test_compare_passes_equal_answers_and_blocks_a_shifted_row():
  contract = serving_check.serving_contract.Contract.from_dict(CONTRACT, 't')
  probabilities = [0.1, 0.35, 0.8, 0.62]
  result = serving_check.compare(_reference(probabilities),
                                 _answers(probabilities), contract, 1e-4)
  assert result.passed and result.rows == 4
  assert result.max_difference == 0.0
  shifted = copy.deepcopy(_answers(probabilities))
  shifted[2]['probability'] = [0.8003]
  with pytest.raises(serving_check.CheckFailed) as failed:
    serving_check.compare(_reference(probabilities), shifted, contract, 1e-4,
                          row_numbers=[10, 11, 12, 13])
  message = str(failed.value)
  assert message.startswith('1 of 4 test rows differ from serving_default '
                            'by more than 0.0001; the most at test row 12: '
                            'probability [0.8003] where serving_default '
                            'gives [0.8]')
  # Within the tolerance: passed, with the difference reported.
  result = serving_check.compare(_reference(probabilities), shifted,
                                 contract, 1e-3)
  assert result.passed
  assert result.max_difference == pytest.approx(3e-4, abs=2e-6)


def test_compare_checks_the_decision_at_the_contracts_threshold():
  contract = serving_check.serving_contract.Contract.from_dict(CONTRACT, 't')
  probabilities = [0.2, 0.45]
  # Decided at 0.5 instead of the contract's 0.4: row 1 is wrong.
  wrong = _answers(probabilities, threshold=0.5)
  with pytest.raises(serving_check.CheckFailed, match=(
      r"test row 1: the server decided '0', but P\(positive\) 0.45 against "
      r"the threshold 0.4 gives '1'")):
    serving_check.compare(_reference(probabilities), wrong, contract, 1e-4)


def test_compare_reads_a_regression_answer_as_its_value():
  contract = serving_check.serving_contract.Contract.from_dict(
      {**CONTRACT, 'task': 'regression', 'classes': [], 'outputs': ['outputs'],
       'decision_threshold': None}, 't')
  reference = {'outputs': np.array([[12.5], [300.0]], dtype=np.float32)}
  # One output: TF Serving drops its name; each row is [value]. Large
  # values are compared relative to their size.
  result = serving_check.compare(reference, [[12.5], [300.01]], contract,
                                 1e-4)
  assert result.passed
  assert result.max_difference == pytest.approx(0.01 / 300, rel=1e-3)
  with pytest.raises(serving_check.CheckFailed, match='test row 0'):
    serving_check.compare(reference, [[12.6], [300.0]], contract, 1e-4)


def test_the_blessing_is_what_tfx_pusher_reads(tmp_path):
  for result, blessed, marker in (
      (serving_check.CheckResult(passed=True, checked=True, rows=5,
                                 max_difference=0.0, note='fine'), True,
       serving_check.BLESSED_FILE),
      (serving_check.not_blessed(), False, serving_check.NOT_BLESSED_FILE)):
    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(tmp_path / marker)
    serving_check.record(result, blessing)
    # TFX's own test, the one the Pusher's executor makes.
    assert model_utils.is_infra_validated(blessing) is blessed
    assert (tmp_path / marker / marker).is_file()
    assert serving_check.read(blessing.uri)['note'] == result.note
  assert blessing.get_int_custom_property(serving_check.CHECKED) == 0
  assert blessing.get_string_custom_property(serving_check.NOTE).startswith(
      'skipped: the Evaluator did not bless the model')


def _result(**fields) -> run_model.ServingCheckResult:
  values = dict(passed=True, checked=True, rows=200, max_difference=0.0,
                note='200 test rows sent as JSON ...', artifact_id=7)
  values.update(fields)
  return run_model.ServingCheckResult(**values)


def test_the_summary_and_mlflow_say_what_the_check_found():
  passed = _result()
  blocked = _result(passed=False, rows=0, max_difference=None,
                    note='the server answered HTTP 400 to test rows 0-63: x')
  skipped = _result(passed=False, checked=False, rows=0,
                    max_difference=None,
                    note=serving_check.not_blessed().note)
  assert run_summary.serving_check_text(passed) == (
      'passed: 200 test rows sent as JSON ...')
  assert run_summary.serving_check_text(blocked) == (
      'BLOCKED the push: the server answered HTTP 400 to test rows 0-63: x')
  assert run_summary.serving_check_text(skipped) == (
      'skipped: the Evaluator did not bless the model, so it is not pushed '
      'anyway')
  summary = run_summary.RunSummary(run_id='r', components=[], blessed=True,
                                   serving_check=blocked)
  assert 'Serving check: BLOCKED the push: the server answered HTTP 400' in (
      run_summary.format_summary(summary))
  metrics = mlflow_log.metrics_of(summary)
  assert metrics['serving_check.passed'] == 0.0
  assert 'serving_check.max_difference' not in metrics
  summary.serving_check = passed
  metrics = mlflow_log.metrics_of(summary)
  assert (metrics['serving_check.passed'], metrics['serving_check.rows'],
          metrics['serving_check.max_difference']) == (1.0, 200.0, 0.0)


# --- The real server, in a fresh process -----------------------------------


def test_a_sound_model_passes(tiny_model, tmp_path):
  model = _with_contract(tiny_model, tmp_path / 'sound', CONTRACT)
  result = serving_check.check(model, _records(), workdir=str(tmp_path / 'w'))
  assert result.passed, result.note
  assert result.rows == len(ROWS)
  assert result.max_difference == 0.0
  assert result.note.startswith(
      f'{len(ROWS)} test rows sent as JSON to the REST server (python -m '
      'serving) answer as serving_default does: max difference 0 '
      '(tolerance 0.0001), decisions agree at threshold 0.4')
  # The server's log shows it served the copy, which is the check's.
  log = (tmp_path / 'w' / 'server.log').read_text()
  assert "Serving model 'tiny' version 1" in log
  print(f'sound tiny model: server ready in {result.seconds["server_ready"]} '
        f's, check {result.seconds["total"]} s (busy machine)')


def _without_c(contract):
  return {**contract, 'features': [f for f in contract['features']
                                   if f['name'] != 'c']}


def _x_as_int(contract):
  return {**contract, 'features': [
      {**f, 'dtype': 'int'} if f['name'] == 'x' else f
      for f in contract['features']]}


def _other_outputs(contract):
  return {**contract, 'outputs': ['outputs']}


@pytest.mark.parametrize('broken, reason', [
    # The server never sends c: rows with c == 'b' score lower.
    (_without_c, r'^3 of 7 test rows differ from serving_default by more '
                 r'than 0\.0001; the most at test row \d: probability'),
    # x holds 0.25: the server refuses it as an int, naming row and feature.
    (_x_as_int, r"^the server answered HTTP 400 to test rows 0-6: instance "
                r"0, feature 'x' \(int\): expected a whole number, got 0\.1"),
    # The server's loader refuses the model: it exits 3, saying why.
    (_other_outputs, r"^the server \(python -m serving\) exited with code 3: "
                     r"SERVER FAILED: no servable model under .*"
                     r"\['classes', 'probability', 'scores'\], but its "
                     r"contract says \['examples'\] and \['outputs'\]"),
], ids=['feature-missing-from-contract', 'wrong-type', 'outputs-mismatch'])
def test_a_broken_model_is_blocked_with_its_reason(tiny_model, tmp_path,
                                                   broken, reason):
  model = _with_contract(tiny_model, tmp_path / 'broken', broken(CONTRACT))
  result = serving_check.check(model, _records())
  assert not result.passed and result.checked
  assert result.rows == 0
  assert result.note == ' '.join(result.note.split())  # One line.
  assert re.search(reason, result.note), result.note


def test_the_reference_is_serving_default_on_the_examples(tiny_model,
                                                          tmp_path):
  contract = serving_check.serving_contract.Contract.from_dict(CONTRACT, 't')
  model = _with_contract(tiny_model, tmp_path / 'ref', CONTRACT)
  outputs = serving_check.reference_outputs(model, _records(), contract)
  assert outputs['probability'].reshape(-1).tolist() == pytest.approx(
      [expected_probability(x, c or '') for x, c, _, _ in ROWS], abs=1e-6)


# --- TFX's Pusher behind the check, on the e2e run's model -----------------


def _first_pushed_run(metadata_path: str) -> run_model.Run:
  store = run_model.open_store(metadata_path)
  for context in run_model.run_contexts(store, PIPELINE_NAME):
    run = run_model.read_run(store, context, PIPELINE_NAME)
    if run.pushed_destination:
      return run
  raise AssertionError(f'no run in {metadata_path} pushed a model')


def _required_only(contract: dict) -> dict:
  """The contract cut down to the required features: a client following it
  sends no other, so the model scores rows without them."""
  return {**contract, 'features': [f for f in contract['features']
                                   if f['required']]}


@pytest.mark.e2e
def test_the_e2e_run_checked_its_model_before_the_push(e2e_run):
  first = _first_pushed_run(e2e_run.metadata_path)
  check = first.serving_check
  assert check is not None and check.passed and check.checked
  assert check.rows > 100  # The sample's test split, up to 200 rows.
  assert check.max_difference is not None and check.max_difference <= 1e-4
  summary = run_summary.summarize(first)
  line = 'Serving check: ' + run_summary.serving_check_text(summary
                                                            .serving_check)
  assert line in e2e_run.outputs[0].stdout
  assert line.startswith(f'Serving check: passed: {check.rows} test rows '
                         'sent as JSON to the REST server')
  # The run's report shows the same line.
  page, _ = report.report_paths(str(e2e_run.output_dir), first.run_id)
  shown = str(markupsafe.escape(run_summary.serving_check_text(
      summary.serving_check)))
  assert f'<span id="serving-check">{shown}' in pathlib.Path(
      page).read_text()


@pytest.mark.e2e
def test_a_model_the_server_disagrees_with_is_not_pushed(e2e_run, tmp_path):
  from tfx import components as tfx_components
  from tfx.dsl.components.common import importer
  from tfx.orchestration import metadata
  from tfx.orchestration import pipeline as tfx_pipeline
  from tfx.orchestration.local import local_dag_runner
  from tfx.proto import pusher_pb2
  first = _first_pushed_run(e2e_run.metadata_path)
  model = first.execution(run_model.TRAINER).output('model')
  examples = first.execution(run_model.EXAMPLE_GEN_SUFFIX).output('examples')
  blessing = first.execution(run_model.EVALUATOR).output('blessing')
  # The version served before, in a copy of the serving folder.
  served = tmp_path / 'serving_model'
  shutil.copytree(e2e_run.serving_model_dir, served)
  before = pipeline_state.tree_digest(served)
  versions_before = pipeline_state.pushed_versions(served)
  assert len(versions_before) == 1
  broken = tmp_path / 'broken_model'
  shutil.copytree(model.uri, broken)
  contract_path = broken / 'Format-Serving' / 'assets.extra' / (
      'serving_contract.json')
  contract = json.loads(contract_path.read_text())
  contract_path.write_text(json.dumps(_required_only(contract)))

  examples_in = importer.Importer(
      source_uri=examples.uri, artifact_type=standard_artifacts.Examples,
      properties={'split_names': examples.properties[
          'split_names'].string_value}).with_id('ImportExamples')
  blessing_in = importer.Importer(
      source_uri=blessing.uri, artifact_type=standard_artifacts.ModelBlessing,
      custom_properties={'blessed': 1}).with_id('ImportBlessing')
  components = [examples_in, blessing_in]
  for name, uri, destination in (
      ('Broken', str(broken), served),
      ('Intact', model.uri, tmp_path / 'serving_intact')):
    model_in = importer.Importer(
        source_uri=uri, artifact_type=standard_artifacts.Model).with_id(
            f'Import{name}Model')
    check = serving_check.ServingCheck(
        model=model_in.outputs['result'],
        examples=examples_in.outputs['result'],
        model_blessing=blessing_in.outputs['result']).with_id(
            f'{name}ServingCheck')
    pusher = tfx_components.Pusher(
        model=model_in.outputs['result'],
        model_blessing=blessing_in.outputs['result'],
        infra_blessing=check.outputs[serving_check.OUTPUT_KEY],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=str(destination)))).with_id(f'{name}Pusher')
    components += [model_in, check, pusher]
  local_dag_runner.LocalDagRunner().run(tfx_pipeline.Pipeline(
      pipeline_name='serving-check-test',
      pipeline_root=str(tmp_path / 'root'), components=components,
      metadata_connection_config=metadata.sqlite_metadata_connection_config(
          str(tmp_path / 'metadata.sqlite'))))

  store = run_model.open_store(str(tmp_path / 'metadata.sqlite'))
  found = {}
  for kind in ('InfraBlessing', 'PushedModel'):
    for artifact in store.get_artifacts_by_type(kind):
      node = pathlib.Path(artifact.uri).parts[-3]
      found[node] = artifact.custom_properties
  broken_check = found['BrokenServingCheck']
  assert broken_check['blessed'].int_value == 0
  note = broken_check[serving_check.NOTE].string_value
  assert ' test rows differ from serving_default by more than 0.0001' in note
  assert found['BrokenPusher']['pushed'].int_value == 0
  # Nothing new in the serving folder, and the served version untouched.
  assert pipeline_state.pushed_versions(served) == versions_before
  assert pipeline_state.tree_digest(served) == before
  # The same model with its own contract passes and is pushed.
  assert found['IntactServingCheck']['blessed'].int_value == 1
  assert found['IntactPusher']['pushed'].int_value == 1
  [pushed] = pipeline_state.pushed_versions(tmp_path / 'serving_intact')
  assert (pushed / 'saved_model.pb').is_file()
  print(f'broken model blocked: {note}')
