"""Which model the Trainer keeps, and why: `--model auto`.

With `auto` the Trainer trains the wide-and-deep DNN and the
gradient-boosted trees on the same rows (`models/train.py`), then scores
three candidates on the eval split with one proper score
(`models/eval_split.py`: log loss for classification, RMSE for
regression): the DNN, the trees, and the mean of their predictions
(`ENSEMBLE`), and keeps the best. The eval split is the Trainer's
validation rows: neither family fitted or early-stopped on it, and the
Evaluator's test rows play no part. A tie keeps the simpler model: the
DNN, then the trees, then the mean.

Why the mean: the two families err differently (a network interpolates
smoothly, trees cut the space into boxes), so their average is often
better than either, and both scores are convex, so the mean's log loss or
squared error is never above the average of the two. Measured on seven
tables (docs/own-data.md), the mean's hold-out score beat the single
family that the eval split would have picked on six of them; on small
tables the eval split is too small to tell the two families apart
reliably, and the mean does not have to.

With `dnn` or `gbt` only that family trains, and it is still scored, so
every run reports its model's eval score.

After the choice, and after the decision threshold is chosen on the kept
model's eval predictions, the trees of a kept model that holds them grow
again on the train and eval rows (`models/gbt.py`, `refit`), and
`with_trees` puts them in place: the pushed model is then the refit trees,
or the mean of the DNN and the refit trees. The recorded eval scores are
those of the models chosen between, which the eval split could judge.

The choice (`Choice`) goes into training_info.json, where the run summary,
the report, the model card and MLflow read it, and into the serving
contract (`model`, `candidates`). The Evaluator then gates the chosen
model against the latest blessed one, whichever family that was.

Nothing here imports TensorFlow: the models are any callables that
`eval_split.predict_eval_split` can score.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any
from typing import Callable
from typing import Dict
from typing import Iterable
from typing import Mapping
from typing import Optional
from typing import Tuple

import numpy as np

from models import eval_split
from models import model_config as model_config_lib

# The key of the choice in training_info.json.
KEY = 'model_choice'
# The mean of the DNN's and the trees' predictions (auto only).
ENSEMBLE = 'ensemble'
CHOICES = (model_config_lib.DNN, model_config_lib.GBT, ENSEMBLE)
FAMILY_NAMES = {model_config_lib.DNN: 'wide-and-deep DNN',
                model_config_lib.GBT: 'gradient-boosted trees',
                ENSEMBLE: 'the mean of the DNN and the trees'}


@dataclasses.dataclass(frozen=True)
class Choice:
  """The family kept, and the eval scores it was chosen on.

  Attributes:
    requested: What the config asked for: dnn, gbt or auto.
    chosen: What the pushed model is: dnn, gbt or ensemble (the mean of
      both).
    metric: The eval-split score's name (`eval_split.eval_score`).
    higher_is_better: Which way the metric points.
    scores: Candidate -> its eval score (NaN when it could not be
      scored).
    eval_rows: Eval rows scored.
  """
  requested: str
  chosen: str
  metric: str
  higher_is_better: bool
  scores: Dict[str, float]
  eval_rows: int = 0

  def __post_init__(self) -> None:
    if self.requested not in model_config_lib.FAMILIES:
      raise ValueError(f'requested must be one of {model_config_lib.FAMILIES}, '
                       f'got {self.requested!r}.')
    if self.chosen not in CHOICES:
      raise ValueError(f'chosen must be one of {", ".join(CHOICES)}, got '
                       f'{self.chosen!r}.')

  @property
  def others(self) -> Tuple[str, ...]:
    """The candidates not kept (auto only)."""
    return tuple(f for f in self.scores if f != self.chosen)

  @property
  def needs_forest_ops(self) -> bool:
    """The kept model holds trees: loading it needs TF-DF's ops."""
    return self.chosen in (model_config_lib.GBT, ENSEMBLE)

  def note(self) -> str:
    """One line: 'ensemble, chosen by auto: eval log_loss 0.2801 (dnn
    0.3012, gbt 0.3101)'."""
    score = self.scores.get(self.chosen, float('nan'))
    how = ('chosen by auto' if self.requested == model_config_lib.AUTO else
           f'as configured ({self.requested})')
    line = f'{self.chosen}, {how}: eval {self.metric} {score:.4f}'
    if self.others:
      line += ' (' + ', '.join(f'{f} {self.scores[f]:.4f}'
                               for f in self.others) + ')'
    return line

  def to_dict(self) -> Dict[str, Any]:
    values = dataclasses.asdict(self)
    # JSON has no NaN: a family that could not be scored is null.
    values['scores'] = {k: (v if math.isfinite(v) else None)
                        for k, v in self.scores.items()}
    return values

  @classmethod
  def from_dict(cls, values: Mapping[str, Any]) -> 'Choice':
    values = dict(values)
    values['scores'] = {str(k): (float(v) if v is not None else float('nan'))
                        for k, v in (values.get('scores') or {}).items()}
    return cls(**values)


def of_training_info(info: Optional[Mapping[str, Any]]) -> Optional[Choice]:
  """The choice recorded in training_info.json; None in runs before it."""
  values = (info or {}).get(KEY)
  return Choice.from_dict(values) if values else None


def better(first: float, second: float, higher_is_better: bool) -> bool:
  """`first` strictly beats `second`; a NaN beats nothing and loses to any
  number."""
  if math.isnan(first):
    return False
  if math.isnan(second):
    return True
  return first > second if higher_is_better else first < second


@dataclasses.dataclass
class Scored:
  """A family's model and its eval-split predictions."""
  model: Any
  labels: np.ndarray
  predictions: np.ndarray
  score: float


def choose(task: str, requested: str, models: Mapping[str, Any],
           eval_dataset: Callable[[], Iterable[Tuple[Any, Any]]],
           mean_of: Optional[Callable[[Tuple[Any, ...]], Any]] = None
           ) -> Tuple[Choice, Scored]:
  """Scores each candidate on the eval split and keeps the best.

  Args:
    task: One of `features.TASKS`.
    requested: dnn, gbt or auto.
    models: Family -> trained model (a callable on transformed features),
      the DNN first.
    eval_dataset: Returns a fresh, finite pass over the transformed eval
      split, (features, label) batches, in the same order every time.
    mean_of: Builds the model that answers the mean of the given models'
      predictions (`gbt.mean_model`). With two families and this, their
      mean is a candidate too; it is built only when it is kept.

  Returns:
    The choice, and the chosen model with its eval labels and predictions
    (for the decision threshold, which must be chosen on them).
  """
  if not models:
    raise ValueError('No model was trained, so there is nothing to choose.')
  scored: Dict[str, Scored] = {}
  metric, higher = '', False
  for family, model in models.items():
    labels, predictions = eval_split.predict_eval_split(model, eval_dataset())
    metric, value, higher = eval_split.eval_score(task, labels, predictions)
    scored[family] = Scored(model, labels, predictions, value)
  if mean_of is not None and len(scored) == 2:
    first, second = scored.values()
    if not np.array_equal(first.labels, second.labels):
      raise ValueError('The eval split was read in two different orders; '
                       'the mean of the two models cannot be scored.')
    predictions = (first.predictions + second.predictions) / 2.0
    _, value, _ = eval_split.eval_score(task, first.labels, predictions)
    scored[ENSEMBLE] = Scored(None, first.labels, predictions, value)
  chosen = next(iter(scored))
  for family in scored:
    if better(scored[family].score, scored[chosen].score, higher):
      chosen = family
  kept = scored[chosen]
  if chosen == ENSEMBLE:
    kept.model = mean_of(tuple(models.values()))
  choice = Choice(requested=requested, chosen=chosen, metric=metric,
                  higher_is_better=higher,
                  scores={f: s.score for f, s in scored.items()},
                  eval_rows=int(len(kept.labels)))
  return choice, kept


def with_trees(choice: Choice, models: Mapping[str, Any], trees: Any,
               mean_of: Callable[[Tuple[Any, ...]], Any]) -> Any:
  """The kept model with `trees` in place of the trees it was chosen with.

  For the refit (`models/gbt.py`): the trees grown again on the train and
  eval rows replace those scored here. The DNN is not refit: it stays as
  trained, alone or in the mean.

  Args:
    choice: The choice; its kept model must hold trees.
    models: Family -> trained model, as given to `choose`.
    trees: The trees that replace `models[GBT]`.
    mean_of: Builds the mean of models (`gbt.mean_model`).

  Raises:
    ValueError: The kept model holds no trees.
  """
  if not choice.needs_forest_ops:
    raise ValueError(f'The kept model ({choice.chosen}) holds no trees to '
                     'replace.')
  if choice.chosen == model_config_lib.GBT:
    return trees
  return mean_of(tuple(trees if family == model_config_lib.GBT else model
                       for family, model in models.items()))
