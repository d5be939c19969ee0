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
| `serving_model_version` | model | the version being served |
| `serving_model_loads_total` | model, outcome | versions loaded or refused |

plus the process's CPU and memory (`process_*`).
"""

from __future__ import annotations

import collections
from typing import Dict
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
        'serving_model_version', 'The version being served.', ['model'],
        registry=registry)
    self.loads = prometheus_client.Counter(
        'serving_model_loads', 'Versions loaded or refused.',
        ['model', 'outcome'], registry=registry)

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

  def loaded(self, version: int) -> None:
    self.model_version.labels(self.model_name).set(version)
    self.loads.labels(self.model_name, 'loaded').inc()

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
