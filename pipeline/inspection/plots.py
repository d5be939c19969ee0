"""The evaluation plots of the report, drawn from TFMA's own plot output.

Binary models: ROC and precision-recall curves from TFMA's
`ConfusionMatrixPlot` (1,000 thresholds), the calibration curve from its
`CalibrationPlot` buckets (merged into 10 bins by mean prediction), and the
confusion matrix at the model's decision threshold (the same plot's matrix
nearest it; 0.5 for a model without one).
Multiclass models: the confusion matrix of TFMA's
`MultiClassConfusionMatrixPlot` (the highest-scored class against the
label).

Regression models: predicted against actual, and the residuals against the
prediction. TFMA's only plot that could give them is `CalibrationPlot`,
whose buckets are fixed intervals between bounds set when the pipeline is
defined, and a regression label's range is not known then (its buckets
default to [0, 1]). So these two are drawn from the rows the
FeatureAttributions component scored (up to 2,000 test rows, a seeded
sample), and their captions say so.

Reading (`read_tfma_plots`) gives plain numbers; drawing gives `Plot`s, PNG
images as base64 text, which the report embeds as `data:` URIs: the page
needs nothing from outside. matplotlib draws them without pyplot, so no
global figure state or display backend is involved.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

from matplotlib import figure as mpl_figure
import numpy as np
import tensorflow_model_analysis as tfma

CANDIDATE = 'candidate'
DECISION_THRESHOLD = 0.5
CALIBRATION_BINS = 10
# 460 x 360 pixels; sizes exact in binary, so no pixel is lost to rounding.
FIGURE_SIZE = (5.75, 4.5)  # Inches.
DPI = 80
LINE = '#1f6feb'
REFERENCE = '#8c959f'
# TFMA's predicted class id for "no class scored above the threshold".
NO_CLASS = -1


@dataclasses.dataclass(frozen=True)
class ThresholdPoint:
  """A binary confusion matrix at one threshold (counts, weighted)."""
  threshold: float
  tp: float
  fp: float
  tn: float
  fn: float

  @property
  def tpr(self) -> float:
    return _ratio(self.tp, self.tp + self.fn)

  @property
  def fpr(self) -> float:
    return _ratio(self.fp, self.fp + self.tn)

  @property
  def precision(self) -> float:
    return _ratio(self.tp, self.tp + self.fp)


@dataclasses.dataclass(frozen=True)
class CalibrationBucket:
  """One TFMA calibration bucket: sums of labels and predictions."""
  lower: float
  upper: float
  count: float
  label_sum: float
  prediction_sum: float


@dataclasses.dataclass(frozen=True)
class TfmaPlots:
  """The Overall slice's plot data of one model, as plain numbers."""
  thresholds: Tuple[ThresholdPoint, ...] = ()
  calibration: Tuple[CalibrationBucket, ...] = ()
  # (actual class id, predicted class id, count); predicted may be NO_CLASS.
  multiclass: Tuple[Tuple[int, int, float], ...] = ()


@dataclasses.dataclass(frozen=True)
class Plot:
  """One picture of the report: a PNG, as base64 text."""
  key: str  # 'roc', 'pr', 'calibration', 'confusion', ...
  title: str
  caption: str
  png_base64: str

  @property
  def data_uri(self) -> str:
    return 'data:image/png;base64,' + self.png_base64


def _ratio(numerator: float, denominator: float) -> float:
  return numerator / denominator if denominator > 0 else math.nan


# --- Reading TFMA's plot output -------------------------------------------


def read_tfma_plots(evaluation_uri: str, model_name: str = CANDIDATE
                    ) -> TfmaPlots:
  """The Overall slice's plots of an Evaluator output.

  Args:
    evaluation_uri: The Evaluator's `evaluation` artifact.
    model_name: With a baseline TFMA stores both models' plots: the
      candidate's are read. A single-model evaluation names its model ''.
  """
  thresholds, calibration, multiclass = [], [], []
  for plots in tfma.load_plots(evaluation_uri):
    if tfma.slicer.deserialize_slice_key(plots.slice_key):
      continue  # Overall only.
    for entry in plots.plot_keys_and_values:
      if entry.key.model_name not in ('', model_name):
        continue
      value = entry.value
      if value.HasField('confusion_matrix_at_thresholds'):
        thresholds.extend(
            ThresholdPoint(m.threshold, m.true_positives, m.false_positives,
                           m.true_negatives, m.false_negatives)
            for m in value.confusion_matrix_at_thresholds.matrices)
      if value.HasField('calibration_histogram_buckets'):
        calibration.extend(
            CalibrationBucket(b.lower_threshold_inclusive,
                              b.upper_threshold_exclusive,
                              b.num_weighted_examples.value,
                              b.total_weighted_label.value,
                              b.total_weighted_refined_prediction.value)
            for b in value.calibration_histogram_buckets.buckets)
      if value.HasField('multi_class_confusion_matrix_at_thresholds'):
        matrices = value.multi_class_confusion_matrix_at_thresholds.matrices
        if matrices:
          # The first threshold (the default, 0): the argmax class.
          multiclass.extend(
              (e.actual_class_id, e.predicted_class_id,
               e.num_weighted_examples)
              for e in matrices[0].entries)
  return TfmaPlots(tuple(sorted(thresholds, key=lambda p: p.threshold)),
                   tuple(calibration), tuple(multiclass))


# --- Plain numbers for each picture ------------------------------------


def roc_points(points: Sequence[ThresholdPoint]
               ) -> Tuple[Tuple[float, float], ...]:
  """(FPR, TPR) pairs from (0, 0) to (1, 1), in FPR order."""
  pairs = {(p.fpr, p.tpr) for p in points
           if math.isfinite(p.fpr) and math.isfinite(p.tpr)}
  return tuple(sorted(pairs | {(0.0, 0.0), (1.0, 1.0)}))


def pr_points(points: Sequence[ThresholdPoint]
              ) -> Tuple[Tuple[float, float], ...]:
  """(recall, precision) pairs, in recall order; thresholds with no
  predicted positive have no precision and are left out."""
  pairs = {(p.tpr, p.precision) for p in points
           if math.isfinite(p.tpr) and math.isfinite(p.precision)}
  return tuple(sorted(pairs, key=lambda rp: (rp[0], -rp[1])))


def confusion_at(points: Sequence[ThresholdPoint],
                 threshold: float = DECISION_THRESHOLD
                 ) -> Optional[ThresholdPoint]:
  """The matrix at the threshold nearest `threshold`; None without any."""
  return min(points, key=lambda p: abs(p.threshold - threshold),
             default=None)


def calibration_bins(buckets: Sequence[CalibrationBucket],
                     bins: int = CALIBRATION_BINS
                     ) -> Tuple[Tuple[float, float, float], ...]:
  """(mean prediction, observed rate, rows) per bin of the prediction.

  TFMA's buckets are fine (1,000 in [0, 1]); each goes to the bin of its
  own mean prediction, so the merge follows the data, not bucket edges.
  Empty bins are left out.
  """
  totals = np.zeros((bins, 3))
  for bucket in buckets:
    if bucket.count <= 0:
      continue
    mean = bucket.prediction_sum / bucket.count
    index = min(bins - 1, max(0, int(mean * bins)))
    totals[index] += (bucket.count, bucket.label_sum, bucket.prediction_sum)
  return tuple((p / n, label / n, n) for n, label, p in totals if n > 0)


def multiclass_matrix(entries: Sequence[Tuple[int, int, float]],
                      num_classes: int) -> np.ndarray:
  """[actual, predicted] counts; a last column for "no class predicted"
  when TFMA recorded any."""
  unscored = any(predicted == NO_CLASS for _, predicted, _ in entries)
  matrix = np.zeros((num_classes, num_classes + (1 if unscored else 0)))
  for actual, predicted, count in entries:
    if 0 <= actual < num_classes:
      column = num_classes if predicted == NO_CLASS else predicted
      if 0 <= column < matrix.shape[1]:
        matrix[actual, column] += count
  return matrix


# --- Drawing ---------------------------------------------------------------


def _new_figure() -> Tuple[mpl_figure.Figure, object]:
  fig = mpl_figure.Figure(figsize=FIGURE_SIZE, dpi=DPI)
  return fig, fig.add_subplot(1, 1, 1)


def _encoded(fig: mpl_figure.Figure) -> str:
  fig.tight_layout()
  buffer = io.BytesIO()
  # No timestamp or version text in the file: the same data, the same bytes.
  fig.savefig(buffer, format='png', dpi=DPI, metadata={'Software': None})
  return base64.b64encode(buffer.getvalue()).decode('ascii')


def draw_roc(points: Sequence[ThresholdPoint],
             auc: Optional[float]) -> Plot:
  fig, ax = _new_figure()
  pairs = roc_points(points)
  ax.plot([x for x, _ in pairs], [y for _, y in pairs], color=LINE, lw=2,
          label='model' + (f' (AUC {auc:.3f})' if auc is not None else ''))
  ax.plot([0, 1], [0, 1], ':', color=REFERENCE, label='chance')
  ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel='false positive rate',
         ylabel='true positive rate (recall)', title='ROC curve')
  ax.legend(loc='lower right', fontsize=8)
  return Plot('roc', 'ROC curve',
              f'TFMA ConfusionMatrixPlot, {len(points)} thresholds.',
              _encoded(fig))


def draw_precision_recall(points: Sequence[ThresholdPoint]) -> Plot:
  fig, ax = _new_figure()
  pairs = pr_points(points)
  ax.plot([r for r, _ in pairs], [p for _, p in pairs], color=LINE, lw=2,
          label='model')
  if points:
    base = points[0]  # The lowest threshold: every row predicted positive.
    rate = _ratio(base.tp + base.fn, base.tp + base.fp + base.tn + base.fn)
    ax.axhline(rate, ls=':', color=REFERENCE,
               label=f'positive rate {rate:.3f}')
  ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel='recall', ylabel='precision',
         title='Precision-recall curve')
  ax.legend(loc='lower left', fontsize=8)
  return Plot('pr', 'Precision-recall curve',
              f'TFMA ConfusionMatrixPlot: {len(pairs)} distinct points of '
              'the thresholds with a predicted positive.', _encoded(fig))


def draw_calibration(buckets: Sequence[CalibrationBucket]) -> Plot:
  fig, ax = _new_figure()
  bins = calibration_bins(buckets)
  ax.plot([0, 1], [0, 1], ':', color=REFERENCE, label='perfectly calibrated')
  ax.plot([p for p, _, _ in bins], [r for _, r, _ in bins], 'o-',
          color=LINE, lw=2, label='model')
  for prediction, rate, count in bins:
    ax.annotate(f'{count:.0f}', (prediction, rate), textcoords='offset points',
                xytext=(0, 6), ha='center', fontsize=7, color='#57606a')
  ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel='mean predicted probability',
         ylabel='observed rate of the positive class', title='Calibration')
  ax.legend(loc='upper left', fontsize=8)
  return Plot('calibration', 'Calibration',
              f'TFMA CalibrationPlot, merged into {len(bins)} bins by mean '
              'prediction; rows per bin above each point.', _encoded(fig))


def _draw_matrix(ax, matrix: np.ndarray, rows: Sequence[str],
                 columns: Sequence[str]) -> None:
  ax.imshow(matrix, cmap='Blues', vmin=0)
  ax.set_xticks(range(len(columns)), labels=list(columns),
                rotation=30 if len(columns) > 4 else 0, fontsize=8)
  ax.set_yticks(range(len(rows)), labels=list(rows), fontsize=8)
  ax.set(xlabel='predicted', ylabel='actual')
  peak = matrix.max() if matrix.size else 0
  for (row, column), count in np.ndenumerate(matrix):
    ax.text(column, row, f'{count:,.0f}', ha='center', va='center',
            fontsize=9, color='white' if count > peak / 2 else '#1f2328')


def draw_binary_confusion(point: ThresholdPoint,
                          classes: Sequence[str] = ('0', '1'),
                          decision_threshold: float = DECISION_THRESHOLD
                          ) -> Plot:
  fig, ax = _new_figure()
  matrix = np.array([[point.tn, point.fp], [point.fn, point.tp]])
  _draw_matrix(ax, matrix, classes, classes)
  ax.set_title(f'Confusion matrix at threshold {point.threshold:.3g}')
  return Plot('confusion', 'Confusion matrix',
              'TFMA ConfusionMatrixPlot, the matrix at the threshold nearest '
              f'the model\'s decision threshold {decision_threshold:.3g}.',
              _encoded(fig))


def draw_multiclass_confusion(entries: Sequence[Tuple[int, int, float]],
                              classes: Sequence[str]) -> Plot:
  fig, ax = _new_figure()
  matrix = multiclass_matrix(entries, len(classes))
  columns = list(classes) + (['none'] if matrix.shape[1] > len(classes)
                             else [])
  _draw_matrix(ax, matrix, classes, columns)
  ax.set_title('Confusion matrix (highest-scored class)')
  return Plot('confusion', 'Confusion matrix',
              'TFMA MultiClassConfusionMatrixPlot.', _encoded(fig))


def draw_predicted_vs_actual(labels: Sequence[float],
                             predictions: Sequence[float]) -> Plot:
  fig, ax = _new_figure()
  labels, predictions = np.asarray(labels), np.asarray(predictions)
  ax.scatter(labels, predictions, s=16, alpha=0.5, color=LINE, lw=0)
  low = float(min(labels.min(), predictions.min()))
  high = float(max(labels.max(), predictions.max()))
  ax.plot([low, high], [low, high], ':', color=REFERENCE,
          label='predicted = actual')
  ax.set(xlabel='actual', ylabel='predicted', title='Predicted vs actual')
  ax.legend(loc='upper left', fontsize=8)
  return Plot('predicted_vs_actual', 'Predicted vs actual',
              f'{labels.size} test rows scored by the FeatureAttributions '
              'component.', _encoded(fig))


def draw_residuals(labels: Sequence[float],
                   predictions: Sequence[float]) -> Plot:
  fig, ax = _new_figure()
  labels, predictions = np.asarray(labels), np.asarray(predictions)
  ax.scatter(predictions, labels - predictions, s=16, alpha=0.5, color=LINE,
             lw=0)
  ax.axhline(0.0, ls=':', color=REFERENCE)
  ax.set(xlabel='predicted', ylabel='residual (actual − predicted)',
         title='Residuals')
  return Plot('residuals', 'Residuals',
              f'{labels.size} test rows scored by the FeatureAttributions '
              'component.', _encoded(fig))


def evaluation_plots(tfma_plots: TfmaPlots, overall: Mapping[str, float],
                     classes: Sequence[str] = (),
                     regression_sample: Optional[Mapping] = None,
                     decision_threshold: float = DECISION_THRESHOLD
                     ) -> Tuple[Plot, ...]:
  """The pictures a run's task has data for, in reading order.

  Args:
    tfma_plots: The Overall slice's TFMA plots (`read_tfma_plots`).
    overall: The Overall slice's metrics; they tell the task.
    classes: Class names in score order; ids stand in without them.
    regression_sample: {'labels': [...], 'predictions': [...]} of the
      FeatureAttributions output, for a regression model.
    decision_threshold: A binary model's decision threshold (the Trainer's,
      models/decision.py); the confusion matrix is drawn there.
  """
  plots = []
  if tfma_plots.thresholds:
    plots.append(draw_roc(tfma_plots.thresholds, overall.get('auc')))
    plots.append(draw_precision_recall(tfma_plots.thresholds))
  if tfma_plots.thresholds and tfma_plots.calibration:
    plots.append(draw_calibration(tfma_plots.calibration))
  if tfma_plots.thresholds:
    plots.append(draw_binary_confusion(
        confusion_at(tfma_plots.thresholds, decision_threshold),
        tuple(classes) if len(classes) == 2 else ('0', '1'),
        decision_threshold))
  if tfma_plots.multiclass:
    count = max(max(a, p) for a, p, _ in tfma_plots.multiclass) + 1
    names = (tuple(classes) if len(classes) >= count else
             tuple(str(i) for i in range(count)))
    plots.append(draw_multiclass_confusion(tfma_plots.multiclass, names))
  if regression_sample and regression_sample.get('labels'):
    plots.append(draw_predicted_vs_actual(regression_sample['labels'],
                                          regression_sample['predictions']))
    plots.append(draw_residuals(regression_sample['labels'],
                                regression_sample['predictions']))
  return tuple(plots)
