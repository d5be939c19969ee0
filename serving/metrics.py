"""The server's Prometheus metrics, served at GET /metrics.

Each app gets its own registry (no global state), holding:

| metric | labels | what |
| --- | --- | --- |
| `serving_requests_total` | model, version, endpoint, code | every request to a model endpoint, by HTTP status |
| `serving_request_errors_total` | model, version, endpoint, code, problem | refused requests, by problem (`missing_feature`, `wrong_type`, ...) |
| `serving_request_latency_seconds` | model, version, endpoint | histogram of the time from request to answer |
| `serving_rows_total` | model, version | rows scored |
| `serving_prediction_score` | model, version, output, class | histogram of the predicted probabilities (classification) |
| `serving_prediction_value` | model, version, output | histogram of the predicted values (regression) |
| `serving_feature_missing_total` | model, feature | scored rows without a value for the feature |
| `serving_feature_unseen_category_total` | model, feature | scored rows whose category is not in the training vocabulary |
| `serving_model_version` | model, label | the version holding the label (`stable`, `canary`) |
| `serving_version_info` | model, version, label | 1 for each served version, with its label (for joins) |
| `serving_canary_share` | model | the canary's share of unaddressed requests |
| `serving_label_changes_total` | model, action | admin actions: `promote`, `rollback`, `canary_share` |
| `serving_model_loads_total` | model, outcome | versions loaded or refused |
| `serving_feedback_total` | model, version, outcome | labels received: `matched` to a prediction, or `unmatched` |
| `serving_live_quality` | model, version, metric | `accuracy`, `auc` or `rmse` over the version's last labelled predictions |
| `serving_live_labels` | model, version | labelled predictions in that window |
| `serving_evaluated_quality` | model, version, metric | the same metrics as the Evaluator measured them for the pushed version (ML Metadata) |

plus the process's CPU and memory (`process_*`).
"""

from __future__ import annotations

import collections
from typing import Any
from typing import Dict
from typing import Mapping
from typing import Sequence
from typing import Set
from typing import Tuple

import numpy as np
import prometheus_client

from models import features
from models import serving_contract

# Latency: 1 ms to 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05,
                   0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Probabilities: twenty bins of 0.05.
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
# Regression values of any scale: 1, 2, 5 per decade, both signs.
_DECADES = [m * 10.0 ** e for e in range(-2, 7) for m in (1, 2, 5)]
VALUE_BUCKETS = tuple(sorted([-v for v in _DECADES] + [0.0] + _DECADES))


class ServingMetrics:
  """The metrics of one server; `render` gives the exposition text."""

  def __init__(self, model_name: str):
    self.model_name = model_name
    self.registry = prometheus_client.CollectorRegistry()
    registry = self.registry
    prometheus_client.ProcessCollector(registry=registry)
    self.requests = prometheus_client.Counter(
        'serving_requests', 'Requests to a model endpoint, by HTTP status.',
        ['model', 'version', 'endpoint', 'code'], registry=registry)
    self.errors = prometheus_client.Counter(
        'serving_request_errors', 'Refused requests, by problem.',
        ['model', 'version', 'endpoint', 'code', 'problem'],
        registry=registry)
    self.latency = prometheus_client.Histogram(
        'serving_request_latency_seconds',
        'Time from request to answer.', ['model', 'version', 'endpoint'],
        buckets=LATENCY_BUCKETS, registry=registry)
    self.rows = prometheus_client.Counter(
        'serving_rows', 'Rows scored.', ['model', 'version'],
        registry=registry)
    self.scores = prometheus_client.Histogram(
        'serving_prediction_score',
        'Predicted probability per class (classification).',
        ['model', 'version', 'output', 'class'], buckets=SCORE_BUCKETS,
        registry=registry)
    self.values = prometheus_client.Histogram(
        'serving_prediction_value', 'Predicted value (regression).',
        ['model', 'version', 'output'], buckets=VALUE_BUCKETS,
        registry=registry)
    self.missing = prometheus_client.Counter(
        'serving_feature_missing', 'Scored rows without a value for the '
        'feature (an optional feature left out or null).',
        ['model', 'feature'], registry=registry)
    self.unseen = prometheus_client.Counter(
        'serving_feature_unseen_category', 'Scored rows whose category is '
        'not in the training vocabulary of the feature.',
        ['model', 'feature'], registry=registry)
    self.model_version = prometheus_client.Gauge(
        'serving_model_version', 'The version holding the label.',
        ['model', 'label'], registry=registry)
    self.version_info = prometheus_client.Gauge(
        'serving_version_info', '1 for each served version, with its label.',
        ['model', 'version', 'label'], registry=registry)
    self.canary_share = prometheus_client.Gauge(
        'serving_canary_share', "The canary's share of unaddressed requests.",
        ['model'], registry=registry)
    self.label_changes = prometheus_client.Counter(
        'serving_label_changes', 'Admin actions: promote, rollback, '
        'canary_share.', ['model', 'action'], registry=registry)
    self.loads = prometheus_client.Counter(
        'serving_model_loads', 'Versions loaded or refused.',
        ['model', 'outcome'], registry=registry)
    self.feedback = prometheus_client.Counter(
        'serving_feedback', 'Labels received for earlier predictions.',
        ['model', 'version', 'outcome'], registry=registry)
    self.live_quality = prometheus_client.Gauge(
        'serving_live_quality', 'Quality over the version\'s last labelled '
        'predictions.', ['model', 'version', 'metric'], registry=registry)
    self.live_labels = prometheus_client.Gauge(
        'serving_live_labels', 'Labelled predictions in the live quality '
        'window.', ['model', 'version'], registry=registry)
    self.evaluated_quality = prometheus_client.Gauge(
        'serving_evaluated_quality', 'The quality the Evaluator measured for '
        'the pushed version.', ['model', 'version', 'metric'],
        registry=registry)
    self._info: Dict[str, str] = {}  # version -> label, as exported.
    self._evaluated: Dict[str, Dict[str, float]] = {}
    self._live_versions: Set[str] = set()

  def request(self, version: str, endpoint: str, code: int, seconds: float,
              problem: str = '') -> None:
    """Counts one request, and its error when `problem` is set."""
    name = self.model_name
    self.requests.labels(name, version, endpoint, str(code)).inc()
    self.latency.labels(name, version, endpoint).observe(seconds)
    if problem:
      self.errors.labels(name, version, endpoint, str(code), problem).inc()

  def scored(self, contract: serving_contract.Contract, version: str,
             outputs: Dict[str, np.ndarray],
             missing: collections.Counter,
             unseen: collections.Counter) -> None:
    """Records the rows of one successful predict request."""
    name = self.model_name
    first = next(iter(outputs.values()))
    self.rows.labels(name, version).inc(len(first))
    for feature, count in missing.items():
      self.missing.labels(name, feature).inc(count)
    for feature, count in unseen.items():
      self.unseen.labels(name, feature).inc(count)
    for output, klass, values in prediction_series(contract, outputs):
      if klass is None:
        histogram = self.values.labels(name, version, output)
      else:
        histogram = self.scores.labels(name, version, output, klass)
      for value in values:
        histogram.observe(float(value))

  def loaded(self, version: int, endpoints: Sequence[str]) -> None:
    """A version was loaded: its request counters start at 0.

    Without the 0, a counter's first sample would already hold the first
    errors, and Prometheus' rate() would not see them as an increase.
    """
    self.loads.labels(self.model_name, 'loaded').inc()
    for endpoint in endpoints:
      for code in ('200', '400'):
        self.requests.labels(self.model_name, str(version), endpoint, code)

  def labels(self, labels: Mapping[str, Any], share: float) -> None:
    """The versions now holding `stable` and `canary`."""
    name = self.model_name
    self.canary_share.labels(name).set(share)
    current = {str(model.version): label for label, model in labels.items()}
    for label in ('stable', 'canary'):
      if label in labels:
        self.model_version.labels(name, label).set(labels[label].version)
      else:
        self._remove(self.model_version, name, label)
    for version, label in self._info.items():
      if current.get(version) != label:
        self._remove(self.version_info, name, version, label)
    for version, label in current.items():
      self.version_info.labels(name, version, label).set(1)
      for metric, value in self._evaluated.get(version, {}).items():
        self.evaluated_quality.labels(name, version, metric).set(value)
    # Unloaded versions: their quality gauges would go stale. (Labels may
    # still come for their predictions; their gauges are removed again.)
    gone = (set(self._info) | self._live_versions) - set(current)
    self._info = current
    self._live_versions &= set(current)
    for version in gone:
      for gauge in (self.live_quality, self.evaluated_quality):
        for metric in ('accuracy', 'auc', 'rmse'):
          self._remove(gauge, name, version, metric)
      self._remove(self.live_labels, name, version)

  def label_change(self, action: str) -> None:
    self.label_changes.labels(self.model_name, action).inc()

  @staticmethod
  def _remove(metric: Any, *values: str) -> None:
    try:
      metric.remove(*values)
    except KeyError:
      pass  # Never set.

  def feedback_received(self, version: str, outcome: str,
                        count: int) -> None:
    self.feedback.labels(self.model_name, version, outcome).inc(count)

  def live(self, version: int, values: Mapping[str, float],
           labels: int) -> None:
    """A version's live quality over its window of `labels` labels."""
    self._live_versions.add(str(version))
    for metric, value in values.items():
      self.live_quality.labels(self.model_name, str(version), metric).set(
          value)
    self.live_labels.labels(self.model_name, str(version)).set(labels)

  def evaluated(self, version: int, values: Mapping[str, float]) -> None:
    """What the Evaluator measured for a version; exported while it is
    served (from another thread: one dict assignment)."""
    self._evaluated[str(version)] = dict(values)

  def refused(self) -> None:
    self.loads.labels(self.model_name, 'refused').inc()

  def render(self) -> Tuple[bytes, str]:
    """The exposition text and its content type."""
    return (prometheus_client.generate_latest(self.registry),
            prometheus_client.CONTENT_TYPE_LATEST)


def prediction_series(contract: serving_contract.Contract,
                      outputs: Dict[str, np.ndarray]):
  """(output, class or None, values) for the prediction histograms.

  Binary: P(positive) (`probability`); multiclass: each class's score;
  regression: the value.
  """
  if contract.task == features.REGRESSION:
    return [('outputs', None, outputs['outputs'].reshape(-1))]
  if contract.task == features.BINARY:
    return [('probability', contract.classes[-1],
             outputs['probability'].reshape(-1))]
  scores = outputs['scores']
  return [('scores', klass, scores[:, i])
          for i, klass in enumerate(contract.classes)]
