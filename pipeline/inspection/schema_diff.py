"""Differences between the schema inferred from today's data and the contract.

SchemaGen infers a schema from the statistics of every run; ImportSchemaGen
provides the curated one. Only differences that matter to a reviewer are
reported: columns present in only one, type changes, columns that became
optional or required, and categorical values outside the curated domain.
"""

from __future__ import annotations

from typing import Dict
from typing import List

from tensorflow_metadata.proto.v0 import schema_pb2


def _required(feature: schema_pb2.Feature) -> bool:
  return feature.presence.min_fraction >= 1.0


def _string_domain(schema: schema_pb2.Schema,
                   feature: schema_pb2.Feature) -> List[str]:
  if feature.HasField('string_domain'):
    return list(feature.string_domain.value)
  if feature.HasField('domain'):
    for domain in schema.string_domain:
      if domain.name == feature.domain:
        return list(domain.value)
  return []


def diff(curated: schema_pb2.Schema, inferred: schema_pb2.Schema
         ) -> List[str]:
  """Returns one human-readable line per meaningful difference."""
  by_name: Dict[str, schema_pb2.Feature] = {f.name: f for f in curated.feature}
  seen: Dict[str, schema_pb2.Feature] = {f.name: f for f in inferred.feature}
  lines = []
  for name in sorted(set(seen) - set(by_name)):
    lines.append(f"column '{name}' is in the data but not in the curated "
                 'schema')
  for name in sorted(set(by_name) - set(seen)):
    lines.append(f"column '{name}' is in the curated schema but not in the "
                 'data')
  for name in sorted(set(by_name) & set(seen)):
    want, got = by_name[name], seen[name]
    if want.type != got.type:
      lines.append(f"column '{name}': type "
                   f'{schema_pb2.FeatureType.Name(got.type)} in the data, '
                   f'{schema_pb2.FeatureType.Name(want.type)} in the schema')
    if _required(want) and not _required(got):
      lines.append(f"column '{name}': required by the schema but has missing "
                   'values in the data')
    allowed = set(_string_domain(curated, want))
    if allowed:
      unseen = sorted(set(_string_domain(inferred, got)) - allowed)
      if unseen:
        shown = ', '.join(repr(v) for v in unseen[:5])
        more = f' (+{len(unseen) - 5} more)' if len(unseen) > 5 else ''
        lines.append(f"column '{name}': values outside the curated domain: "
                     f'{shown}{more}')
  return lines
