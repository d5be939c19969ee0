"""`python -m serving.admin`: the canary's commands, sent to a running server.

    python -m serving.admin labels               # which version is stable, canary
    python -m serving.admin share 0.25           # the canary's share of traffic
    python -m serving.admin promote              # the canary becomes stable
    python -m serving.admin rollback             # the canary is removed and retired
        [--url http://127.0.0.1:8501]

Each command is one request to the server's admin endpoints
(`GET /admin/labels`, `POST /admin/promote|rollback|canary_share`), which
answer only requests from the server's own machine. The server applies it
at once, with one reference swap: requests in flight finish on the version
they started with, so none fails. It keeps the labels and the rolled back
versions in OUT/serving_labels.json, so a restart in canary mode serves
the same versions and never a rolled back one. A share set here lasts
until the server restarts; `--canary-share` sets it at start.

Exit codes: 0 done (the labels are printed); 1 the server refused (no
canary to promote or roll back, a share outside 0-1) or cannot be reached;
2 bad flags.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from typing import Dict
from typing import Optional
from typing import Sequence
from typing import Tuple
import urllib.error
import urllib.request

from pipeline.facts import commands

DEFAULT_URL = 'http://127.0.0.1:8501'
REFUSED_EXIT = 1
TIMEOUT_SECONDS = 60


def call(url: str, command: str, share: Optional[float] = None
         ) -> Tuple[int, Dict[str, Any]]:
  """(HTTP status, JSON answer) of one admin command."""
  base = url.rstrip('/')
  if command == 'labels':
    request = urllib.request.Request(f'{base}/admin/labels')
  else:
    action = 'canary_share' if command == 'share' else command
    body = json.dumps({'share': share} if command == 'share' else {})
    request = urllib.request.Request(
        f'{base}/admin/{action}', data=body.encode(), method='POST',
        headers={'Content-Type': 'application/json'})
  try:
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
      return answer.status, json.loads(answer.read())
  except urllib.error.HTTPError as e:
    try:
      return e.code, json.loads(e.read())
    except ValueError:
      return e.code, {'error': f'HTTP {e.code} {e.reason}'}


def describe(labels: Dict[str, Any]) -> str:
  """The labels as two or three readable lines."""
  lines = [f"model {labels['model']!r}: stable version {labels['stable']}"]
  if labels.get('canary') is not None:
    lines.append(f"canary version {labels['canary']}, "
                 f"{labels['canary_share']:.1%} of unaddressed requests")
  else:
    lines.append('no canary' + (
        f" (canary mode: the next push becomes the canary, share "
        f"{labels['canary_share']:.1%})" if labels.get('canary_mode')
        else ''))
  for version, reason in labels.get('retired', {}).items():
    lines.append(f'retired version {version}: {reason}')
  return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog=commands.prog('python -m serving.admin'),
      description=__doc__.splitlines()[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog='\n'.join(__doc__.splitlines()[1:]))
  parser.add_argument('command', choices=('labels', 'share', 'promote',
                                          'rollback'))
  parser.add_argument('share', type=float, nargs='?',
                      help='share: the canary\'s share, 0 to 1.')
  parser.add_argument('--url', default=DEFAULT_URL,
                      help='The server (default: %(default)s).')
  args = parser.parse_args(argv)
  if (args.command == 'share') != (args.share is not None):
    parser.error('give a share (0 to 1) with `share`, and only with it.')
  try:
    status, answer = call(args.url, args.command, args.share)
  except (OSError, ValueError) as e:
    print(f'ADMIN FAILED: cannot reach {args.url}: {e}. Is `python -m '
          'serving` running there?', file=sys.stderr)
    return REFUSED_EXIT
  if status != 200:
    print(f'ADMIN FAILED: {answer.get("error", answer)}', file=sys.stderr)
    return REFUSED_EXIT
  print(describe(answer))
  return 0


if __name__ == '__main__':
  sys.exit(main())
