"""The pipeline definition: one function, no side effects, any orchestrator.

Runners build a `PipelineConfig` and call `create_pipeline`; the same
definition runs under LocalDagRunner, with Dataflow Beam args, or compiled by
KubeflowV2DagRunner.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Optional

from ml_metadata.proto import metadata_store_pb2
from tfx import components as tfx_components
from tfx.dsl.components.common import resolver
from tfx.dsl.experimental.conditionals import conditional
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2
from tfx.proto import pusher_pb2
from tfx.proto import trainer_pb2
from tfx.proto import transform_pb2
from tfx.types import channel
from tfx.types import standard_artifacts

import models
from pipeline.components import anomaly_gate
from pipeline.components import attributions
from pipeline.components import budgeted_tuner
from pipeline.components import curated_schema
from pipeline.components import drift_gate
from pipeline.components import model_change
from pipeline.components import serving_check
from pipeline.definition import config as config_lib
from pipeline.definition import evaluation
from pipeline.definition import sources
from pipeline.facts import components as component_ids

PREPROCESSING_FN = 'models.preprocessing.preprocessing_fn'
RUN_FN = 'models.train.run_fn'
TUNER_FN = 'models.tuning.tuner_fn'  # With --tune.
# The Evaluator's UDF module: TFMA's model loader, with TF Decision Forests'
# ops registered first (a gradient-boosted trees model needs them).
EVALUATOR_MODULE = 'models.forest_ops'

# Stable component ids (pipeline.facts.components); tests, the run summary
# and the runners refer to them.
EXAMPLE_GEN = component_ids.EXAMPLE_GEN
STATISTICS_GEN = component_ids.STATISTICS_GEN
SCHEMA_GEN = component_ids.SCHEMA_GEN
IMPORT_SCHEMA_GEN = component_ids.IMPORT_SCHEMA_GEN
EXAMPLE_VALIDATOR = component_ids.EXAMPLE_VALIDATOR
ANOMALY_GATE = component_ids.ANOMALY_GATE
DRIFT_GATE = component_ids.DRIFT_GATE
TRANSFORM = component_ids.TRANSFORM
TRAINER = component_ids.TRAINER
TUNER = component_ids.TUNER  # With --tune, before the Trainer.
BASELINE_RESOLVER = component_ids.BASELINE_RESOLVER
MODEL_CHANGE_CHECK = component_ids.MODEL_CHANGE_CHECK
EVALUATOR = component_ids.EVALUATOR
SERVING_CHECK = component_ids.SERVING_CHECK
PUSHER = component_ids.PUSHER
FEATURE_ATTRIBUTIONS = component_ids.FEATURE_ATTRIBUTIONS
# Components that run Beam jobs, and so accept per-component Beam args.
BEAM_COMPONENTS = (EXAMPLE_GEN, STATISTICS_GEN, TRANSFORM, EVALUATOR)


def code_fingerprint() -> str:
  """Hash of the `models` package sources.

  Transform and Trainer reference their functions by module path, and TFX's
  cache key does not cover the code behind a module path. Putting this hash
  into their `custom_config` makes a code change invalidate the cache.
  """
  digest = hashlib.sha256()
  package_dir = pathlib.Path(models.__file__).parent
  for path in sorted(package_dir.glob('*.py')):
    digest.update(path.name.encode())
    digest.update(path.read_bytes())
  return digest.hexdigest()[:16]


def create_pipeline(
    config: config_lib.PipelineConfig,
    metadata_connection_config: Optional[
        metadata_store_pb2.ConnectionConfig] = None,
    profile_only: bool = False,
) -> tfx_pipeline.Pipeline:
  """Wires the components.

  Args:
    config: Paths, dataset spec, training and gate settings.
    metadata_connection_config: MLMD connection; None lets the orchestrator
      provide it (Kubeflow / Vertex).
    profile_only: Only ExampleGen, StatisticsGen and SchemaGen: what a
      zero-config run needs to draft its schema and dataset config. They are
      the very components of the full pipeline, so its run that follows
      reuses them from the cache.

  Returns:
    The TFX pipeline.
  """
  splits = config.splits
  # The ExampleGen for the input format (CSV: read with pyarrow in bounded
  # batches). Its id stays EXAMPLE_GEN whatever the format.
  example_gen = sources.example_gen(
      config.input_format, config.data_root, sql=config.sql,
      spans=config.spans,
      output_config=example_gen_pb2.Output(
          split_config=example_gen_pb2.SplitConfig(splits=[
              example_gen_pb2.SplitConfig.Split(name='train',
                                          hash_buckets=splits.train),
              example_gen_pb2.SplitConfig.Split(name='eval', hash_buckets=splits.eval),
              example_gen_pb2.SplitConfig.Split(name=evaluation.TEST_SPLIT,
                                          hash_buckets=splits.test),
          ]))).with_id(EXAMPLE_GEN)

  statistics_gen = tfx_components.StatisticsGen(
      examples=example_gen.outputs['examples']).with_id(STATISTICS_GEN)

  # The curated schema is the contract. The inferred one is kept next to it
  # so the run summary can show how today's data differs from the contract.
  schema_gen = tfx_components.SchemaGen(
      statistics=statistics_gen.outputs['statistics'],
      infer_feature_shape=True).with_id(SCHEMA_GEN)
  if profile_only:
    return _pipeline(config, [example_gen, statistics_gen, schema_gen],
                     metadata_connection_config)
  import_schema_gen = curated_schema.CuratedSchemaImport(
      schema_file=config.schema_path,
      schema_sha256=config.schema_sha256).with_id(IMPORT_SCHEMA_GEN)

  example_validator = tfx_components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=import_schema_gen.outputs['schema']).with_id(EXAMPLE_VALIDATOR)
  gate = anomaly_gate.AnomalyGate(
      anomalies=example_validator.outputs['anomalies'],
      allowed_anomaly_types=','.join(config.gate.allowed_anomalies),
  ).with_id(ANOMALY_GATE)

  fingerprint = code_fingerprint()
  dataset = config.dataset.to_dict()
  transform = tfx_components.Transform(
      examples=example_gen.outputs['examples'],
      schema=import_schema_gen.outputs['schema'],
      preprocessing_fn=PREPROCESSING_FN,
      splits_config=transform_pb2.SplitsConfig(
          analyze=['train'], transform=['train', 'eval']),
      custom_config={'dataset': dataset, 'code_version': fingerprint},
      # StatisticsGen and the ExampleValidator already describe and check
      # the raw data; Transform's own pre- and post-transform statistics
      # would be two more TFDV passes that nothing reads.
      disable_statistics=True,
      disable_analyzer_cache=True,
  ).with_id(TRANSFORM)

  training = config.training
  tuner = None
  if config.tuning is not None:
    tuner = budgeted_tuner.budgeted_tuner(
        tuner_fn=TUNER_FN,
        examples=transform.outputs['transformed_examples'],
        transform_graph=transform.outputs['transform_graph'],
        train_args=trainer_pb2.TrainArgs(
            splits=['train'],
            num_steps=config.tuning.trial_steps(training.train_steps)),
        eval_args=trainer_pb2.EvalArgs(splits=['eval'],
                                       num_steps=training.eval_steps),
        custom_config={'dataset': dataset, 'code_version': fingerprint,
                       'training': training.trainer_custom_config(),
                       'tuning': config.tuning.tuner_custom_config()},
    ).with_id(TUNER)
  trainer = tfx_components.Trainer(
      run_fn=RUN_FN,
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=import_schema_gen.outputs['schema'],
      train_args=trainer_pb2.TrainArgs(splits=['train'],
                                     num_steps=training.train_steps),
      eval_args=trainer_pb2.EvalArgs(splits=['eval'],
                                   num_steps=training.eval_steps),
      custom_config={'dataset': dataset, 'code_version': fingerprint,
                     'training': training.trainer_custom_config()},
      hyperparameters=(tuner.outputs['best_hyperparameters']
                       if tuner is not None else None),
  ).with_id(TRAINER)
  # Nothing is trained on data the gates stopped. Transform does not wait for
  # them: it reads nothing they write, so a runner may run it beside
  # StatisticsGen and the gates.
  first_training_node = tuner if tuner is not None else trainer
  first_training_node.add_upstream_node(gate)

  baseline_resolver = resolver.Resolver(
      strategy_class=latest_blessed_model_strategy.LatestBlessedModelStrategy,
      model=channel.Channel(type=standard_artifacts.Model),
      model_blessing=channel.Channel(
          type=standard_artifacts.ModelBlessing),
  ).with_id(BASELINE_RESOLVER)

  # An unchanged re-run's cached model is the blessed baseline itself:
  # Evaluator and Pusher run only for a model that is not yet the baseline.
  change_check = model_change.ModelChangeCheck(
      model=trainer.outputs['model'],
      baseline_model=baseline_resolver.outputs['model'],
  ).with_id(MODEL_CHANGE_CHECK)
  model_is_new = change_check.outputs[model_change.OUTPUT_KEY].future()[
      0].custom_property(model_change.IS_NEW) == 1
  with conditional.Cond(model_is_new):
    evaluator = tfx_components.Evaluator(
        examples=example_gen.outputs['examples'],
        example_splits=[evaluation.TEST_SPLIT],
        model=trainer.outputs['model'],
        baseline_model=baseline_resolver.outputs['model'],
        eval_config=evaluation.eval_config(config.dataset, config.gate),
        module_path=EVALUATOR_MODULE,
    ).with_id(EVALUATOR)

    # The blessed candidate served by the REST server in a fresh process,
    # answering test rows sent as JSON as serving_default does; its
    # InfraBlessing is TFX's own way to stop the Pusher.
    check = serving_check.ServingCheck(
        model=trainer.outputs['model'],
        examples=example_gen.outputs['examples'],
        model_blessing=evaluator.outputs['blessing'],
        split=evaluation.TEST_SPLIT,
    ).with_id(SERVING_CHECK)

    pusher = tfx_components.Pusher(
        model=trainer.outputs['model'],
        model_blessing=evaluator.outputs['blessing'],
        infra_blessing=check.outputs[serving_check.OUTPUT_KEY],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=config.serving_model_dir)),
    ).with_id(PUSHER)

    # Permutation importance of the candidate on the test split; reported,
    # never gated, so the Pusher does not wait for it. Beside the Evaluator:
    # the local runner runs it in its component worker, on another core.
    feature_attributions = attributions.FeatureAttributions(
        model=trainer.outputs['model'],
        examples=example_gen.outputs['examples'],
        dataset=json.dumps(dataset, sort_keys=True),
        split=evaluation.TEST_SPLIT,
    ).with_id(FEATURE_ATTRIBUTIONS)

  components = [example_gen, statistics_gen, schema_gen, import_schema_gen,
                example_validator, gate, transform, trainer,
                baseline_resolver, change_check, evaluator, check, pusher,
                feature_attributions]
  if tuner is not None:
    components.insert(components.index(trainer), tuner)
  if config.gate.check_drift:
    drift_gate.add_to_pipeline(
        components, example_gen, statistics_gen, import_schema_gen, after=gate,
        before=first_training_node, allowed_anomaly_types=config.gate.allowed_anomalies,
        baseline_record=drift_gate.baseline_record_path(
            config.pipeline_root, config.pipeline_name))
  return _pipeline(config, components, metadata_connection_config)


def _pipeline(config: config_lib.PipelineConfig, components: list,
              metadata_connection_config: Optional[
                  metadata_store_pb2.ConnectionConfig]) -> tfx_pipeline.Pipeline:
  for component in components:
    extra = (config.component_beam_args or {}).get(component.id)
    if extra:
      component.with_beam_pipeline_args(list(extra))
  return tfx_pipeline.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=components,
      enable_cache=config.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(config.beam_pipeline_args))
