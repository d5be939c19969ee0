"""A pushed model as an MLflow pyfunc model: raw rows in, predictions out.

Every registered model version (pipeline/tracking/mlflow_worker.py) is an
MLflow model whose `MLmodel` names this module as the pyfunc flavor's
`loader_module`, and whose `data/<version>/` is the pushed SavedModel:

    model/MLmodel                       pyfunc: loader_module serving.mlflow_model
    model/data/1796413467/saved_model.pb, variables/, assets.extra/...
    model/requirements.txt, python_env.yaml, conda.yaml

So `mlflow.pyfunc.load_model('models:/taxi/1')` and `mlflow models serve -m
models:/taxi/1 --env-manager local` load it with the REST server's own code
(`serving/model_store.py`: the contract checked against the signature,
TF-DF's ops registered for a gradient-boosted trees model), nothing is
pickled, and the module is this project's installed package's.

`predict` takes raw rows, as the REST server's `:predict` does: a pandas
DataFrame of the raw columns (what `mlflow models serve` makes of
`dataframe_records` or `dataframe_split`), a dict of columns, or a list of
row dicts. Each row is checked against the serving contract and encoded by
`serving/instances.py`, exactly as for a REST request (the label and
unknown columns are refused, ignored columns dropped, an empty cell, NaN
or None is a missing value), and scored by `serving_default`. It returns
the REST server's `predictions`: per row, the outputs as TF Serving writes
them (`classes`, `probability`, `scores`; a regression's `[value]`), and
for a binary model the `decision` at the contract's threshold. A refused
row raises an MLflow error naming the row and the feature (HTTP 400 from
`mlflow models serve`).
"""

from __future__ import annotations

import math
import os
from typing import Any
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional

import numpy as np

from models import features
from models import keras_choice
from serving import instances as instances_lib
from serving import model_store
from serving import tf_serving


def _load_pyfunc(data_path: str, model_config: Any = None) -> 'PyfuncModel':
  """MLflow's hook: the model in `data_path` (`data/<version>/`)."""
  del model_config  # Unused: the model has no settings.
  keras_choice.select_keras()  # As the REST server does, before TensorFlow.
  name = os.path.basename(os.path.normpath(data_path))
  version = int(name) if name.isdigit() else 0
  return PyfuncModel(model_store.load(data_path, version))


def _plain(value: Any) -> Any:
  """A cell as a JSON value: numpy scalars to Python, missing to None."""
  if isinstance(value, np.generic):
    value = value.item()
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return None
  return value


def records(model_input: Any) -> List[Dict[str, Any]]:
  """Rows as dicts from a DataFrame, a dict of columns or a list of rows;
  missing cells (None, NaN) left out."""
  if hasattr(model_input, 'to_dict') and hasattr(model_input, 'columns'):
    rows = model_input.to_dict(orient='records')
  elif isinstance(model_input, Mapping):
    columns = {str(k): list(np.asarray(v, dtype=object).reshape(-1))
               for k, v in model_input.items()}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
      raise instances_lib.RequestError(
          f'the columns have different lengths ({sorted(lengths)}); send '
          'one value per row in each column.', instances_lib.BAD_BODY)
    count = lengths.pop() if lengths else 0
    rows = [{k: v[i] for k, v in columns.items()} for i in range(count)]
  elif isinstance(model_input, list):
    rows = model_input
  else:
    raise instances_lib.RequestError(
        f'cannot score a {type(model_input).__name__}; send a pandas '
        'DataFrame of the raw columns (dataframe_records or dataframe_split '
        'to mlflow models serve).', instances_lib.BAD_BODY)
  found = []
  for row in rows:
    if not isinstance(row, Mapping):
      found.append(row)  # The checker names the row and refuses it.
      continue
    found.append({str(k): v for k, v in
                  ((k, _plain(v)) for k, v in row.items()) if v is not None})
  return found


class PyfuncModel:
  """The loaded version; `predict` is what MLflow calls."""

  def __init__(self, model: model_store.LoadedModel):
    self.model = model
    self._checker = instances_lib.Checker(model.contract)

  def predict(self, model_input: Any,
              params: Optional[Dict[str, Any]] = None) -> List[Any]:
    """The REST server's `predictions` for raw rows.

    Raises:
      mlflow.exceptions.MlflowException: A row the contract refuses, or one
        the model refuses (INVALID_PARAMETER_VALUE: HTTP 400).
    """
    del params  # Unused.
    import tensorflow as tf
    try:
      rows = records(model_input)
      checked = self._checker.check_rows(
          rows, names=[f'row {i}' for i in range(len(rows))])
      serialized = instances_lib.encode(checked.values, self.model.contract)
      outputs = self.model.predict(serialized)
    except instances_lib.RequestError as e:
      raise _refused(str(e)) from None
    except tf.errors.InvalidArgumentError as e:
      raise _refused(f'the model refused the rows: {e.message}') from None
    return answer(self.model, outputs)


def answer(model: model_store.LoadedModel,
           outputs: Mapping[str, np.ndarray]) -> List[Any]:
  """The REST server's `predictions` (TF Serving's row format), with a
  binary model's `decision` at its threshold."""
  predicted = tf_serving.predictions(outputs)
  contract = model.contract
  if contract.task == features.BINARY:
    probability = np.asarray(outputs['probability']).reshape(-1)
    for row, p in zip(predicted, probability.tolist(), strict=True):
      row['decision'] = contract.classes[int(p >= model.decision_threshold)]
  return predicted


def _refused(message: str) -> Exception:
  # MLflow is there whenever MLflow loaded this module.
  from mlflow.exceptions import MlflowException
  from mlflow.protos import databricks_pb2
  return MlflowException(message,
                         error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
