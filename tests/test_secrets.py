"""No secrets in the repository, the runners' flags, the logs or the metadata.

Cloud access is meant to come only from Application Default Credentials,
which the Google client libraries find on their own: no flag takes a key or
token, and no code loads a key file or passes explicit credentials.
"""

import ast
import pathlib
import re
import subprocess
from typing import Iterator
from typing import List
from typing import Tuple

import pytest

from tests.conftest import FAKE_KEY_BODY
from tests.conftest import FAKE_KEY_ID
from tests.conftest import REPO_ROOT
from tests.conftest import load_runner

# Token formats with a recognisable shape, and generic assignments of a
# quoted literal to a secret-sounding name.
SECRET_PATTERNS = {
    'private key block': re.compile(r'-----BEGIN [A-Z ]*PRIVATE KEY-----'),
    'AWS access key id': re.compile(r'\b(AKIA|ASIA)[0-9A-Z]{16}\b'),
    'GitHub token': re.compile(r'\bgh[pousr]_[A-Za-z0-9]{36,}\b'),
    'Google API key': re.compile(r'\bAIza[0-9A-Za-z_\-]{35}\b'),
    'Google OAuth token': re.compile(r'\bya29\.[0-9A-Za-z_\-]{20,}'),
    'Slack token': re.compile(r'\bxox[abposr]-[0-9A-Za-z-]{10,}'),
    'Hugging Face token': re.compile(r'\bhf_[A-Za-z0-9]{30,}\b'),
    'service account key': re.compile(r'"private_key_id"\s*:'),
    'secret assignment': re.compile(
        r'(?i)\b(password|passwd|secret|api[_-]?key|access[_-]?token|'
        r'auth[_-]?token)\b\s*[:=]\s*[\'"][^\'"\s]{8,}[\'"]'),
}
KEY_FILE_NAMES = re.compile(
    r'(?i)(\.pem|\.p12|\.pfx|\.key|\.keystore|id_rsa|id_ed25519|\.env|'
    r'credentials?\.json|service[-_]?account.*\.json|\.netrc)$')
MAX_SCAN_BYTES = 5 * 1024 * 1024
CODE_DIRS = ('pipeline', 'models', 'runners', 'schema')


def _repo_files() -> List[pathlib.Path]:
  """Tracked files plus new files git would pick up (not ignored ones)."""
  listed = subprocess.run(
      ['git', 'ls-files', '--cached', '--others', '--exclude-standard', '-z'],
      cwd=REPO_ROOT, capture_output=True, check=True).stdout
  names = [n for n in listed.decode().split('\0') if n]
  return [REPO_ROOT / n for n in names if (REPO_ROOT / n).is_file()]


def _findings(text: str) -> Iterator[Tuple[str, str]]:
  for kind, pattern in SECRET_PATTERNS.items():
    for match in pattern.finditer(text):
      yield kind, match.group(0)[:60]


def test_detector_finds_planted_secrets():
  """The patterns are not vacuous: each kind of secret below is found."""
  planted = '\n'.join([
      '-----BEGIN ' + 'PRIVATE KEY-----',
      'aws = "AKIA' + 'Q3EXAMPLE7KEY2AB"',
      'tok = gh' + 'p_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8',
      'key = AI' + 'za' + 'SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q',
      'password = "' + 'hunter2hunter2"',
  ])
  kinds = {kind for kind, _ in _findings(planted)}
  assert kinds >= {'private key block', 'AWS access key id', 'GitHub token',
                   'Google API key', 'secret assignment'}


def test_no_secrets_or_key_files_in_the_repo():
  files = _repo_files()
  assert len(files) > 20, 'git ls-files found too little; scan is broken'
  problems = []
  for path in files:
    relative = path.relative_to(REPO_ROOT)
    if KEY_FILE_NAMES.search(path.name):
      problems.append(f'{relative}: looks like a key or credentials file')
    if path.stat().st_size > MAX_SCAN_BYTES:
      continue
    text = path.read_bytes().decode('utf-8', errors='replace')
    for kind, found in _findings(text):
      problems.append(f'{relative}: {kind}: {found}')
  assert not problems, ('Remove these from the repo and rotate them if they '
                        'were real:\n' + '\n'.join(problems))


def _python_sources() -> Iterator[pathlib.Path]:
  for folder in CODE_DIRS:
    yield from sorted((REPO_ROOT / folder).rglob('*.py'))


def test_code_uses_only_application_default_credentials():
  """No key files, explicit credentials or token env vars in the code."""
  forbidden = re.compile(
      r'from_service_account_(file|info|json)|service_account\.Credentials|'
      r'access_token|'
      r'oauth2client|\.json_keyfile')
  problems = []
  for path in _python_sources():
    for number, line in enumerate(path.read_text().splitlines(), 1):
      if forbidden.search(line):
        problems.append(f'{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}')
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
      # google.auth.default() is ADC; any other google.auth.* loader is not.
      if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
          and node.value.id == 'auth' and node.attr.startswith('load_')):
        problems.append(f'{path.relative_to(REPO_ROOT)}:{node.lineno}: '
                        f'auth.{node.attr}')
  assert not problems, ('Use Application Default Credentials (gcloud auth '
                        'application-default login, or the workload identity '
                        'of the worker) instead:\n' + '\n'.join(problems))


def _runners() -> List[pathlib.Path]:
  return sorted((REPO_ROOT / 'runners').glob('*_runner.py'))


@pytest.mark.parametrize('runner', [p.stem for p in _runners()])
def test_runner_flags_take_no_secrets(runner, capsys):
  """Each runner's --help, through its main() in this process."""
  with pytest.raises(SystemExit) as exit_info:
    load_runner(runner).main(['--help'])
  assert exit_info.value.code == 0
  help_text = capsys.readouterr().out
  flags = re.findall(r'(--[a-z0-9][a-z0-9-]*)', help_text)
  assert '--help' in flags
  secretive = [f for f in flags if re.search(
      r'token|password|passwd|secret|api-key|apikey|credential|key-file|'
      r'keyfile|private-key', f)]
  assert not secretive, f'{runner} takes secrets as flags: {secretive}'
  assert not list(_findings(help_text))


# A TFX INFO line that LocalDagRunner logs for every node, and that only
# --verbose shows: proof that the full logs were captured.
VERBOSE_ONLY = 'INFO:absl:Running launcher for node_info'


@pytest.mark.e2e
def test_logs_and_metadata_never_show_credentials(concurrent_runs):
  """Verbose runs with credentials in their environment do not leak them.

  The runs are the session's `concurrent_runs` (tests/conftest.py): two
  --verbose runs with fake credentials of every common kind in their
  environment.
  """
  canaries = concurrent_runs.credentials
  secrets = [v for k, v in canaries.items() if k != 'GOOGLE_APPLICATION_'
             'CREDENTIALS'] + [FAKE_KEY_ID, FAKE_KEY_BODY[:12]]
  metadata = (concurrent_runs.output_dir / 'metadata.sqlite').read_bytes()
  for secret in secrets:
    assert secret.encode() not in metadata, 'a credential reached MLMD'
  for result in concurrent_runs.results:
    logs = result.stdout + result.stderr
    # The verbose logs really were captured.
    assert VERBOSE_ONLY in logs, logs[-3000:]
    for secret in secrets:
      assert secret not in logs, f'a credential reached the logs: {secret[:8]}'
    assert not list(_findings(logs))
