"""The report's plots, fairness and attributions sections, on hand-made data.

The plot numbers (ROC and precision-recall points, calibration bins, the
confusion matrices) are checked against hand-counted values; the pictures
are decoded and must be real images of the promised size with the curve's
colour in them; TFMA's plot file is read back from a file written here; and
the sections render into the page with nothing loaded from outside it.
"""

import base64
import io
import math
import re

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from pipeline.inspection import analysis
from pipeline.inspection import plots
from pipeline.inspection import report
from pipeline.inspection import slice_gaps
from tests.test_report import EVIL
from tests.test_report import EVIL_ESCAPED
from tests.test_report import _view

# Five rows: positives scored 0.9 and 0.6, negatives 0.7, 0.3 and 0.1.
POINTS = (plots.ThresholdPoint(-1e-6, tp=2, fp=3, tn=0, fn=0),
          plots.ThresholdPoint(0.2, tp=2, fp=2, tn=1, fn=0),
          plots.ThresholdPoint(0.5, tp=2, fp=1, tn=2, fn=0),
          plots.ThresholdPoint(0.65, tp=1, fp=1, tn=2, fn=1),
          plots.ThresholdPoint(0.8, tp=1, fp=0, tn=3, fn=1),
          plots.ThresholdPoint(1.0, tp=0, fp=0, tn=3, fn=2))


def test_roc_and_precision_recall_points():
  assert plots.roc_points(POINTS) == (
      (0.0, 0.0), (0.0, 0.5), (1 / 3, 0.5), (1 / 3, 1.0), (2 / 3, 1.0),
      (1.0, 1.0))
  # The threshold without a predicted positive has no precision.
  assert plots.pr_points(POINTS) == (
      (0.5, 1.0), (0.5, 0.5), (1.0, 2 / 3), (1.0, 0.5), (1.0, 0.4))
  assert plots.confusion_at(POINTS).threshold == 0.5
  assert plots.confusion_at(POINTS, 0.7).threshold == 0.65
  assert plots.confusion_at(()) is None


def test_calibration_merges_fine_buckets_by_their_mean_prediction():
  buckets = (plots.CalibrationBucket(-math.inf, 0.0, 0, 0, 0),
             plots.CalibrationBucket(0.05, 0.051, 2, 0, 0.101),
             plots.CalibrationBucket(0.08, 0.081, 2, 1, 0.161),
             plots.CalibrationBucket(0.9, 0.901, 4, 3, 3.602))
  bins = plots.calibration_bins(buckets)
  assert len(bins) == 2
  assert bins[0] == pytest.approx((0.0655, 0.25, 4))
  assert bins[1] == pytest.approx((0.9005, 0.75, 4))


def test_multiclass_matrix_counts_and_unscored_rows():
  entries = ((0, 0, 5.0), (0, 1, 1.0), (1, 1, 4.0), (2, 0, 2.0),
             (2, plots.NO_CLASS, 1.0))
  matrix = plots.multiclass_matrix(entries, 3)
  np.testing.assert_array_equal(matrix, [[5, 1, 0, 0], [0, 4, 0, 0],
                                         [2, 0, 0, 1]])
  assert plots.multiclass_matrix(entries[:3], 2).shape == (2, 2)


def _image(plot: plots.Plot) -> Image.Image:
  data = base64.b64decode(plot.png_base64)
  assert data.startswith(b'\x89PNG\r\n\x1a\n')
  return Image.open(io.BytesIO(data)).convert('RGB')


def _has_colour(image: Image.Image, hex_colour: str) -> int:
  """Pixels within a small distance of the colour."""
  target = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
  pixels = np.asarray(image).reshape(-1, 3).astype(int)
  return int((np.abs(pixels - target).sum(axis=1) < 40).sum())


def test_binary_plots_are_drawn():
  calibration = (plots.CalibrationBucket(0.1, 0.101, 3, 1, 0.3),
                 plots.CalibrationBucket(0.7, 0.701, 2, 2, 1.4))
  pictures = plots.evaluation_plots(
      plots.TfmaPlots(thresholds=POINTS, calibration=calibration),
      {'auc': 0.833}, classes=('no', 'yes'))
  assert [p.key for p in pictures] == ['roc', 'pr', 'calibration',
                                       'confusion']
  for picture in pictures:
    image = _image(picture)
    assert image.size == (460, 360)
    assert len(image.getcolors(1 << 16) or []) > 20, picture.key
  # The curves are drawn in the line colour, the matrix in blues.
  for picture in pictures[:3]:
    assert _has_colour(_image(picture), plots.LINE) > 100, picture.key
  assert picture.data_uri.startswith('data:image/png;base64,iVBOR')


def test_multiclass_and_regression_plots():
  pictures = plots.evaluation_plots(
      plots.TfmaPlots(multiclass=((0, 0, 3.0), (1, 2, 1.0), (2, 2, 4.0))),
      {'accuracy': 0.87}, classes=('a', 'b', 'c'))
  assert [p.key for p in pictures] == ['confusion']
  sample = {'labels': [1.0, 2.0, 3.0, 4.0], 'predictions': [1.2, 1.9, 3.3,
                                                            3.6]}
  pictures = plots.evaluation_plots(plots.TfmaPlots(), {'r_squared': 0.9},
                                    regression_sample=sample)
  assert [p.key for p in pictures] == ['predicted_vs_actual', 'residuals']
  # The points are the line colour at half opacity over white.
  line = np.array([int(plots.LINE[i:i + 2], 16) for i in (1, 3, 5)])
  half = '#' + ''.join(f'{int(round(v)):02x}' for v in (line + 255) / 2)
  for picture in pictures:
    assert _has_colour(_image(picture), half) > 10, picture.key
  assert plots.evaluation_plots(plots.TfmaPlots(), {'r_squared': 0.9}) == ()


def test_tfma_plot_file_is_read_back(tmp_path):
  """A plots file as the Evaluator writes it (PlotsForSlice records)."""
  def record(slice_key, model_name, tp):
    plots_for_slice = metrics_for_slice_pb2.PlotsForSlice(
        slice_key=tfma.slicer.serialize_slice_key(slice_key))
    entry = plots_for_slice.plot_keys_and_values.add()
    entry.key.model_name = model_name
    matrices = entry.value.confusion_matrix_at_thresholds.matrices
    matrices.add(threshold=0.5, true_positives=tp, false_positives=1,
                 true_negatives=5, false_negatives=2)
    entry.value.calibration_histogram_buckets.buckets.add(
        lower_threshold_inclusive=0.2, upper_threshold_exclusive=0.3,
        num_weighted_examples={'value': 4},
        total_weighted_label={'value': 1},
        total_weighted_refined_prediction={'value': 1.0})
    return plots_for_slice.SerializeToString()

  path = tmp_path / 'plots-00000-of-00001.tfrecord'
  with tf.io.TFRecordWriter(str(path)) as writer:
    writer.write(record((), 'baseline', 9))
    writer.write(record((), 'candidate', 3))
    writer.write(record((('payment_type', 'Cash'),), 'candidate', 7))
  read = plots.read_tfma_plots(str(tmp_path), 'candidate')
  assert read.thresholds == (plots.ThresholdPoint(0.5, 3, 1, 5, 2),)
  assert read.calibration == (plots.CalibrationBucket(0.2, 0.3, 4, 1, 1.0),)
  assert read.multiclass == ()


# --- The sections in the page ----------------------------------------------


def _analysis_view(feature='payment_type'):
  by_slice = {
      f'{feature}=Cash': {'auc': 0.95, 'example_count': 130,
                          'majority_class_rate': 0.7,
                          slice_gaps.FALSE_POSITIVE_RATE: 0.02},
      f'{feature}=Card': {'auc': 0.81, 'example_count': 70,
                          'majority_class_rate': 0.6,
                          slice_gaps.FALSE_POSITIVE_RATE: 0.2},
      f'{feature}=Dispute': {'auc': 0.2, 'example_count': 2,
                             'majority_class_rate': 0.5,
                             slice_gaps.FALSE_POSITIVE_RATE: 1.0}}
  fairness = analysis.fairness_view(
      [feature], {'auc': 0.9, slice_gaps.FALSE_POSITIVE_RATE: 0.1}, by_slice)
  attributions = analysis.attributions_view({
      'metric': 'auc', 'baseline': 0.92, 'rows': 202, 'repeats': 3,
      'seed': 0, 'seconds': 4.25, 'split': 'test', 'features': [
          {'feature': feature, 'importance': 0.34, 'spread': 0.01},
          {'feature': 'fare', 'importance': 0.017, 'spread': 0.004},
          {'feature': 'company', 'importance': -0.002, 'spread': 0.001}]},
      '/tmp/out/FeatureAttributions/attributions/15')
  pictures = plots.evaluation_plots(plots.TfmaPlots(thresholds=POINTS),
                                    {'auc': 0.83})
  return dict(fairness=fairness, attributions=attributions,
              plots=analysis.PlotsView(pictures, 'Drawn from TFMA.'))


def test_sections_render_with_gap_attributions_and_images():
  page = report.render(_view(**_analysis_view()))
  assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 3
  for key in ('roc', 'pr', 'confusion'):
    assert f'id="plot-{key}"' in page
  largest = re.search(r'id="largest-gap">(.*?)</p>', page, re.S).group(1)
  assert re.sub(r'<[^>]+>', '', largest) == (
      'Largest gap of AUC: 0.1400 across payment_type, between '
      'payment_type=Cash (0.9500, 130 rows) and payment_type=Card (0.8100, '
      '70 rows).')
  # The 2-row slice is listed, greyed, and left out of the gap.
  assert '<tr class="muted"><td>Dispute</td><td>2</td>' in page
  assert '(1 left out)' in page
  assert '<th>FPR @0.5</th>' in page
  # Attributions in their order, with bars relative to the largest.
  rows = re.findall(r'id="attribution-([^"]+)"><td>[^<]*</td><td>([^<]*)<',
                    page)
  assert rows == [('payment_type', '0.3400'), ('fare', '0.0170'),
                  ('company', '-0.0020')]
  assert 'style="width:100%"' in page and 'style="width:5%"' in page
  assert 'style="width:0%"' in page
  text = re.sub(r'\s+', ' ', re.sub(r'<[^>]+>', ' ', page))
  assert 'Drop of AUC' in text and 'computed in 4.2 s' in text
  assert 'AUC (0.9200 on these rows)' in text


def test_sections_say_when_they_have_nothing():
  fields = _analysis_view()
  fields['fairness'] = analysis.fairness_view(
      ['hour'], {'auc': 0.9}, {'hour=1': {'auc': 0.9, 'example_count': 5}})
  fields['attributions'] = None
  fields['plots'] = analysis.PlotsView((), 'No regression plots: ...')
  page = report.render(_view(**fields))
  assert 'No gap of AUC: no slice column has two slices with at least 30' in (
      page)
  assert 'No feature attributions in this run' in page
  assert '<img' not in page and 'No regression plots' in page


def test_feature_names_are_escaped_in_the_new_sections():
  page = report.render(_view(**_analysis_view(EVIL)))
  assert EVIL not in page
  assert f'id="attribution-{EVIL_ESCAPED}"' in page
  assert f'{EVIL_ESCAPED}=Cash' in page


def test_images_are_the_only_embedded_resources():
  page = report.render(_view(**_analysis_view()))
  page = page.replace(str(_view().statistics.facets_html), '')
  images = re.findall(r'\bsrc\s*=\s*"([^"]*)"', page)
  assert len(images) == 3
  assert all(re.fullmatch(r'data:image/png;base64,[A-Za-z0-9+/=]+', src)
             for src in images)
  rest = re.sub(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', '', page)
  for pattern in (r'https?:', r'\bsrc\s*=', r'\bhref\s*=', r'<link\b',
                  r'<script\b', r'url\(', r'@import', r'<iframe\b'):
    assert not re.search(pattern, rest, re.IGNORECASE), pattern


def test_fairness_indicators_stay_out_of_the_slice_table():
  metrics = {'accuracy': 0.9, 'precision[class 0]': 0.8,
             f'{slice_gaps.FALSE_POSITIVE_RATE}[class 0]': 0.1,
             'precision[class 0]_diff': 0.01}
  assert report.metric_columns(metrics) == ('accuracy', 'precision[class 0]')
