"""--warm-start: the blessed model the Trainer starts from, chosen up front.

The model is not given to the Trainer as an input channel resolved at run
time: an unchanged re-run would then see the model its own first run
blessed, its Trainer's inputs would change, and it would retrain instead of
taking everything from the cache and skipping the Evaluator
(`pipeline/components/model_change.py`). It is chosen here instead, before
the pipeline is built, as a fixed function of the data the run reads:

* data in spans (`span-N/`, or a query with `{SPAN}`): the latest blessed
  model trained on an earlier span (for a range `--span A-B`: on a span
  before B);
* data without spans: the latest blessed model trained on other data, whose
  input fingerprint differs from today's. That fingerprint is ExampleGen's
  own (for files: their count, bytes and modification times, computed here
  as its driver will; for a SQL query: the rows' SHA-256).

A re-run of the same data names the same model, so it stays cached; a run
on new data starts from the model blessed before it. The choice goes into
`TrainingConfig.warm_start`, part of the Trainer's custom_config, and the
Trainer checks whether that model fits (`models/warm_start.py`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterable
from typing import Optional
from typing import Tuple

from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2
from tfx.utils import path_utils
from tfx.utils import proto_utils

from models import features
from models import model_config as model_config_lib
from pipeline.components import span_range
from pipeline.definition import config as config_lib
from pipeline.definition import sources
from pipeline.facts import layout as layout_lib
from pipeline.inspection import run_model


def resolve(config: config_lib.PipelineConfig, layout: layout_lib.OutputLayout
            ) -> config_lib.PipelineConfig:
  """The config with its warm start resolved; as it is without one.

  Prints one line saying which model the Trainer starts from, or why none.
  """
  asked = config.training.warm_start
  if asked is None or asked.resolved:
    return config
  try:
    span, fingerprint = todays_data(config)
  except (ValueError, OSError, RuntimeError) as e:
    chosen = config_lib.WarmStart(
        resolved=True, none_because=f'cannot fingerprint the input '
        f'{config.data_root}: {e}')
  else:
    try:
      store = run_model.open_store(layout.metadata_location)
    except FileNotFoundError:  # The first run in this output dir.
      blessed: Iterable[run_model.BlessedModel] = ()
    else:
      blessed = run_model.blessed_models(store, config.pipeline_name)
    chosen = choose(blessed, span, fingerprint)
  print(describe(chosen), flush=True)
  return dataclasses.replace(config, training=dataclasses.replace(
      config.training, warm_start=chosen))


def todays_data(config: config_lib.PipelineConfig) -> Tuple[int, str]:
  """(span, fingerprint) of the data ExampleGen will read; span 0: none.

  For files, TFX's own function on the ExampleGen's own input config, as
  its driver computes them when the run starts.
  """
  if config.sql is not None:
    return config.sql.span or 0, config.sql.rows_fingerprint
  example_gen = sources.example_gen(
      config.input_format, config.data_root, sql=None, spans=config.spans,
      output_config=example_gen_pb2.Output())
  props = example_gen.exec_properties
  input_config = proto_utils.json_to_proto(props['input_config'],
                                           example_gen_pb2.Input())
  span_range_asked = span_range.static_range(props.get('range_config'))
  if span_range_asked is not None:  # --span A-B: as SpanRangeDriver will.
    fingerprint, _ = span_range.resolve(
        props['input_base'], list(input_config.splits), *span_range_asked)
    return span_range_asked[1], fingerprint
  range_config = (proto_utils.json_to_proto(
      props['range_config'], range_config_pb2.RangeConfig())
                  if props.get('range_config') else None)
  fingerprint, span, _ = (
      example_gen_utils.calculate_splits_fingerprint_span_and_version(
          props['input_base'], input_config.splits, range_config))
  return span, fingerprint


def choose(blessed: Iterable[run_model.BlessedModel], span: int,
           fingerprint: str) -> config_lib.WarmStart:
  """The warm start for today's data, from the blessed models newest first.

  Args:
    blessed: `run_model.blessed_models`, newest first.
    span: Today's span; 0 for data without spans.
    fingerprint: Today's input fingerprint.
  """
  seen = 0
  for model in blessed:
    seen += 1
    earlier = (model.span < span if span else
               model.data_fingerprint != fingerprint)
    if earlier:
      return _from(model)
  if span:
    why = f'no blessed model of a span before span {span}'
  elif seen:
    why = ('no blessed model trained on other data: every blessed model '
           'was trained on the data this run reads')
  else:
    why = 'no blessed model yet'
  return config_lib.WarmStart(resolved=True, none_because=why)


def _from(model: run_model.BlessedModel) -> config_lib.WarmStart:
  """The warm start from one blessed model, with its Trainer's settings."""
  dataset: Optional[features.DatasetSpec] = None
  settings: Optional[model_config_lib.ModelConfig] = None
  try:
    trainer_config = json.loads(model.trainer_config)
    dataset = features.DatasetSpec.from_dict(trainer_config['dataset'])
    settings = model_config_lib.ModelConfig.from_dict(
        trainer_config['training']['model'])
  except (ValueError, LookupError, TypeError):
    # An older Trainer's config: the Trainer then starts cold and says so.
    dataset, settings = None, None
  return config_lib.WarmStart(
      resolved=True,
      model_uri=path_utils.serving_model_dir(model.model.uri),
      transform_graph_uri=(model.transform_graph.uri
                           if model.transform_graph is not None else ''),
      run_id=model.run_id, span=model.span or None, dataset=dataset,
      model=settings)


def describe(warm: config_lib.WarmStart) -> str:
  """The run's line: 'Warm start: from the model blessed in run R ...'."""
  if not warm.model_uri:
    return (f'Warm start: none ({warm.none_because}); the Trainer starts '
            'cold.')
  span = f' (span {warm.span})' if warm.span is not None else ''
  return (f'Warm start: from the model blessed in run {warm.run_id}{span}, '
          f'{warm.model_uri}; the Trainer checks that it fits.')
