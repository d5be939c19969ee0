"""Random request bodies for the serving tests: JSON of every shape and
depth, the keys the API reads, values TF Serving's forms take or refuse,
bytes that are not UTF-8 or JSON, and nesting past the parser's limit.

Seeded by the caller, so a failing body repeats.
"""

import json
import random
from typing import Any
from typing import Iterator


def random_json(rng: random.Random, depth: int = 0) -> Any:
  """A JSON value; objects use the keys the API reads."""
  kind = rng.randrange(9 if depth < 6 else 5)
  if kind == 0:
    return rng.choice([None, True, False])
  if kind == 1:
    return rng.choice([0, -1, 2 ** 70, 1e308, -0.0, 3.5, float('nan'),
                       float('inf')])
  if kind == 2:
    return rng.choice(['', 'Cash', '\ud800', 'x' * 5000, 'fare', 'b64',
                       'examples', 'instances'])
  if kind in (3, 4):
    return {'b64': rng.choice(['', 'AAAA', 'not base64', '/w', 7])}
  if kind in (5, 6):
    return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
  keys = ['instances', 'inputs', 'examples', 'context', 'signature_name',
          'fare', 'b64', 'labels', 'label', 'prediction_id', 'keys']
  return {rng.choice(keys): random_json(rng, depth + 1)
          for _ in range(rng.randrange(4))}


def bodies(rng: random.Random, count: int) -> Iterator[bytes]:
  """`count` request bodies."""
  for _ in range(count):
    shape = rng.randrange(4)
    if shape == 0:
      yield json.dumps(random_json(rng), allow_nan=True).encode()
    elif shape == 1:
      yield json.dumps({rng.choice(['instances', 'inputs', 'examples']):
                        random_json(rng)}).encode()
    elif shape == 2:
      yield bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    else:
      opener = rng.choice([b'[', b'{"a":', b'{"instances": ['])
      yield opener * rng.choice([10, 999, 1001, 50_000])
