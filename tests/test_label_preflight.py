"""Label checks of the preflight, with and without a curated schema.

Each refusal is tested on a tiny CSV written to tmp_path and asserts where
it points (file, line, column) and the key phrase of what to do. Data rows
start at line 2: line 1 is the header.
"""

import pathlib
from typing import List
from typing import Optional
from typing import Sequence

import pytest

from models import features
from pipeline.validation import contract
from pipeline.validation import driver as input_check
from pipeline.validation import labels
from pipeline.validation import problems as input_problems

LABEL = 'y'
HEADER = ('x', 'color', LABEL)


def _write(folder: pathlib.Path, labels: Sequence[str], name: str = 'data.csv',
           header: Sequence[str] = HEADER) -> pathlib.Path:
  """Writes one CSV whose last column holds `labels`, one row each."""
  folder.mkdir(parents=True, exist_ok=True)
  lines = [','.join(header)]
  for i, label in enumerate(labels):
    # Every third row leaves 'color' empty: gaps outside the label are fine.
    color = '' if i % 3 == 0 else 'red'
    lines.append(f'{i},{color},{label}')
  path = folder / name
  path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
  return path


def _rule(task: str, **spec_fields) -> contract.LabelRule:
  spec = features.DatasetSpec(name='t', label_key=LABEL, task=task,
                              numeric_features=('x',),
                              categorical_features=('color',), **spec_fields)
  return contract.LabelRule.from_spec(spec)


def _problems(data: pathlib.Path, rule: contract.LabelRule
              ) -> List[input_problems.Problem]:
  with pytest.raises(input_problems.InputCheckError) as raised:
    input_check.check_without_schema(str(data), rule)
  return raised.value.problems


def _only(problems: List[input_problems.Problem], path: pathlib.Path,
          line: Optional[int], *phrases: str) -> input_problems.Problem:
  """Asserts a single problem at `path`, `line`, the label column."""
  assert len(problems) == 1, [str(p) for p in problems]
  problem = problems[0]
  assert (problem.path, problem.line, problem.column) == (
      str(path), line, LABEL), str(problem)
  for phrase in phrases:
    assert phrase in problem.message, f'{phrase!r} not in {problem}'
  return problem


# --- Refusals. ----------------------------------------------------------------


def test_missing_label_column_without_schema(tmp_path):
  path = _write(tmp_path, ['1', '0'], header=('x', 'color', 'target'))
  _only(_problems(tmp_path, _rule('binary')), path, 1,
        'label column is missing from the header',
        'pass --label with one of the columns (x, color, target)')


def test_empty_label_cells_list_the_first_lines(tmp_path):
  labels = ['0', '1'] * 10
  for i in (2, 3, 7, 9, 11, 12, 15):
    labels[i] = ''
  labels[15] = '  '  # Blank counts as empty.
  path = _write(tmp_path, labels)
  problem = _only(_problems(tmp_path, _rule('binary')), path, 4,
                  'label is empty in 7 rows',
                  'rows without a label cannot train or evaluate',
                  'fill in the label or drop those rows')
  assert '(line(s) 4, 5, 9, 11, 13, ...)' in problem.message


def test_binary_third_value_names_its_first_line(tmp_path):
  path = _write(tmp_path, ['0', '1', '1', '0', '2', '2', '1'])
  problem = _only(_problems(tmp_path, _rule('binary')), path, 6,
                  "label value '2' is a third distinct value",
                  'a binary label holds exactly two values')
  assert ("values seen: '1' (3 rows), '0' (2 rows), '2' (2 rows)"
          in problem.message)


def test_binary_strings_need_a_positive_label(tmp_path):
  path = _write(tmp_path, ['no', 'yes', 'no'])
  problem = _only(_problems(tmp_path, _rule('binary')), path, 2,
                  'not 0/1', "pass --positive-label VALUE with VALUE 'no' or "
                  "'yes'")
  assert "'no' (2 rows), 'yes' (1 row)" in problem.message


def test_binary_positive_label_that_never_occurs(tmp_path):
  _write(tmp_path, ['no', 'Yes', 'no'])
  problem = _only(_problems(tmp_path, _rule(
      'binary', label_positive_values=('yes',))), tmp_path, None,
      "no row holds the positive label value ('yes')",
      'matched exactly, case included')
  assert "'no' (2 rows), 'Yes' (1 row)" in problem.message


def test_binary_single_class_is_refused(tmp_path):
  _write(tmp_path, ['0', '0', '0'])
  _only(_problems(tmp_path, _rule('binary')), tmp_path, None,
        "every row holds the same label ('0' (3 rows))",
        'needs rows of both classes')


def test_regression_label_must_be_a_finite_number(tmp_path):
  path = _write(tmp_path, ['1.5', '2', 'n/a', '3e2', 'inf', '-0.25'])
  _only(_problems(tmp_path, _rule('regression')), path, 4,
        "label value 'n/a' is not a finite number (and 1 more in this file)",
        'a regression label must be a number in every row')


def test_multiclass_needs_two_classes(tmp_path):
  _write(tmp_path, ['cat'] * 12)
  _only(_problems(tmp_path, contract.LabelRule(LABEL, 'multiclass')),
        tmp_path, None, "label holds 1 class(es) ('cat' (12 rows))",
        'a multiclass model needs at least 2')


def test_multiclass_small_class_names_count_and_first_line(tmp_path):
  labels = ['cat', 'dog'] * 10 + ['bird'] * 3
  labels[5] = 'bird'  # First 'bird' on line 7; 'dog' keeps 9 rows.
  path = _write(tmp_path, labels)
  problems = _problems(tmp_path, contract.LabelRule(LABEL, 'multiclass'))
  assert [(p.line, p.column) for p in problems] == [(3, LABEL), (7, LABEL)]
  dog, bird = problems
  assert dog.path == bird.path == str(path)
  assert "class 'dog' has only 9 rows" in dog.message
  assert "class 'bird' has only 4 rows" in bird.message
  assert 'fewer than the 10 a class needs' in bird.message
  assert 'examples of each class in train' in bird.message


def test_min_rows_per_class_is_configurable(tmp_path):
  _write(tmp_path, ['cat', 'dog', 'dog', 'bird'])
  rule = contract.LabelRule(LABEL, 'multiclass', min_rows_per_class=1)
  assert input_check.check_without_schema(str(tmp_path), rule).label_counts == {
      'dog': 2, 'cat': 1, 'bird': 1}


def test_multiclass_value_outside_the_configured_classes(tmp_path):
  labels = ['cat', 'dog'] * 10
  labels[13] = 'Dog'
  labels[17] = 'Dog'
  path = _write(tmp_path, labels)
  problems = _problems(tmp_path, _rule('multiclass',
                                       label_classes=('cat', 'dog')))
  # 'dog' drops to 8 rows, so both problems are reported.
  assert [(p.path, p.line, p.column) for p in problems] == [
      (str(path), 15, LABEL), (str(path), 3, LABEL)]
  assert ("label value 'Dog' (2 rows) is not one of the classes the dataset "
          'config lists (cat, dog)') in problems[0].message
  assert "class 'dog' has only 8 rows" in problems[1].message


def test_configured_class_without_rows(tmp_path):
  _write(tmp_path, ['cat', 'dog'] * 10)
  _only(_problems(tmp_path, _rule('multiclass',
                                  label_classes=('cat', 'dog', 'fox'))),
        tmp_path, None, "class 'fox' of the dataset config has no rows")


def test_multiclass_too_many_distinct_values(tmp_path, monkeypatch):
  monkeypatch.setattr(labels, 'MAX_DISTINCT_LABELS', 4)
  path = _write(tmp_path, [f'id{i}' for i in range(8)])
  _only(_problems(tmp_path, contract.LabelRule(LABEL, 'multiclass')), path,
        6, 'more than 4 distinct values', 'too many to be classes')


def test_unreadable_rows_skip_the_whole_dataset_checks(tmp_path):
  """A bad row may hold the missing class; only the row is reported."""
  path = _write(tmp_path, ['cat', 'dog', 'bird'])
  with open(path, 'a', encoding='utf-8') as f:
    f.write('9,red,cat,extra\n')
  problems = _problems(tmp_path, contract.LabelRule(LABEL, 'multiclass'))
  assert [(p.line, p.column) for p in problems] == [(5, None)]
  assert 'has 4 values but the header has 3' in problems[0].message


def test_classes_are_counted_across_files(tmp_path):
  _write(tmp_path, ['cat'] * 6 + ['dog'] * 4, name='a.csv')
  _write(tmp_path, ['cat'] * 4 + ['dog'] * 6, name='b.csv')
  report = input_check.check_without_schema(
      str(tmp_path), contract.LabelRule(LABEL, 'multiclass'))
  assert report.label_counts == {'cat': 10, 'dog': 10}
  assert report.rows == 20


# --- Accepted. ----------------------------------------------------------------


def test_binary_zero_one_is_accepted(tmp_path):
  _write(tmp_path, ['0', '1', '0', '0'])
  report = input_check.check_without_schema(str(tmp_path), _rule('binary'))
  assert report.label_counts == {'0': 3, '1': 1}
  assert "Label 'y': 2 classes (0 3, 1 1)." in report.summary()


def test_binary_strings_with_positive_label_are_accepted(tmp_path):
  _write(tmp_path, ['no', 'yes', 'no'])
  rule = _rule('binary', label_positive_values=('yes',),
               label_classes=('no', 'yes'))
  assert rule.classes == ()  # Binary label_classes only name the scores.
  report = input_check.check_without_schema(str(tmp_path), rule)
  assert report.label_counts == {'no': 2, 'yes': 1}
  assert "Label 'y': 2 classes (no 2, yes 1; positive: yes)." in (
      report.summary())


def test_multiclass_strings_with_gaps_in_other_columns(tmp_path):
  labels = ['Adelie'] * 15 + ['Gentoo'] * 12 + ['Chinstrap'] * 10
  _write(tmp_path, labels)  # 'color' is empty in every third row.
  report = input_check.check_without_schema(
      str(tmp_path), _rule('multiclass',
                           label_classes=('Adelie', 'Chinstrap', 'Gentoo')))
  assert list(report.label_counts.items()) == [
      ('Adelie', 15), ('Gentoo', 12), ('Chinstrap', 10)]
  assert ("Label 'y': 3 classes (Adelie 15, Gentoo 12, Chinstrap 10)."
          in report.summary())


def test_summary_caps_the_classes_listed(tmp_path):
  labels = [c for c in 'abcdefg' for _ in range(10)]
  _write(tmp_path, labels)
  report = input_check.check_without_schema(
      str(tmp_path), contract.LabelRule(LABEL, 'multiclass'))
  assert "7 classes (a 10, b 10, c 10, d 10, e 10, 2 more)." in (
      report.summary())


def test_regression_floats_are_accepted(tmp_path):
  _write(tmp_path, ['1.5', '-2', '3e2', '0.000895'])
  report = input_check.check_without_schema(str(tmp_path), _rule('regression'))
  assert report.label_counts == {}
  assert "Label 'y': a number in every row (regression)." in report.summary()


def test_without_schema_accepts_any_column(tmp_path):
  _write(tmp_path, ['0', '1'], header=('surcharge', 'free text', LABEL))
  report = input_check.check_without_schema(str(tmp_path), _rule('binary'))
  assert report.columns == ['surcharge', 'free text', LABEL]
  assert report.extra_columns == []
  assert 'Allow-listed' not in report.summary()


def test_without_schema_still_checks_structure(tmp_path):
  path = _write(tmp_path, ['0', '1'])
  with open(path, 'a', encoding='utf-8') as f:
    f.write('2,"red,1\n')
  problems = _problems(tmp_path, _rule('binary'))
  assert [(p.path, p.line) for p in problems] == [(str(path), 4)]
  assert 'never closed' in problems[0].message


# --- With a curated schema (check). -------------------------------------------


def _schema(tmp_path: pathlib.Path, label_type: str) -> str:
  path = tmp_path / 'schema.pbtxt'
  path.write_text(
      'feature { name: "x" type: INT }\n'
      'feature { name: "color" type: BYTES }\n'
      f'feature {{ name: "{LABEL}" type: {label_type} }}\n', encoding='utf-8')
  return str(path)


def test_check_applies_the_spec_label_rule(tmp_path):
  spec = features.DatasetSpec(name='t', label_key=LABEL, task='multiclass',
                              label_classes=('cat', 'dog'),
                              numeric_features=('x',))
  data = tmp_path / 'data'
  path = _write(data, ['cat', 'dog'] * 10 + ['cow'])
  with pytest.raises(input_problems.InputCheckError) as raised:
    input_check.check(str(data), _schema(tmp_path, 'BYTES'), spec)
  _only(raised.value.problems, path, 22,
        "label value 'cow' (1 row) is not one of the classes")
  path.write_text(path.read_text().replace('cow', 'dog'))
  report = input_check.check(str(data), _schema(tmp_path, 'BYTES'), spec)
  assert report.label_counts == {'dog': 11, 'cat': 10}


def test_check_reports_a_non_numeric_regression_label_once(tmp_path):
  """The schema's FLOAT type already refuses it; no second label message."""
  spec = features.DatasetSpec(name='t', label_key=LABEL, task='regression',
                              numeric_features=('x',))
  data = tmp_path / 'data'
  path = _write(data, ['1.5', 'n/a', '2'])
  with pytest.raises(input_problems.InputCheckError) as raised:
    input_check.check(str(data), _schema(tmp_path, 'FLOAT'), spec)
  _only(raised.value.problems, path, 3,
        "value 'n/a' is not a finite number as the schema requires")


def test_check_refuses_empty_labels(tmp_path):
  spec = features.DatasetSpec(name='t', label_key=LABEL,
                              numeric_features=('x',))
  data = tmp_path / 'data'
  path = _write(data, ['0', '', '1'])
  with pytest.raises(input_problems.InputCheckError) as raised:
    input_check.check(str(data), _schema(tmp_path, 'INT'), spec)
  _only(raised.value.problems, path, 3, 'label is empty in 1 row (line(s) 3)')


# --- LabelRule. ---------------------------------------------------------------


def test_label_rule_from_spec():
  rule = _rule('multiclass', label_classes=('a', 'b'))
  assert rule == contract.LabelRule(LABEL, 'multiclass', classes=('a', 'b'))
  assert _rule('binary', label_positive_values=('>50K',)).positive_values == (
      '>50K',)


@pytest.mark.parametrize('fields, phrase', [
    (dict(task='ranking'), 'task must be one of binary, multiclass'),
    (dict(task='regression', positive_values=('1',)), 'drop --positive-label'),
    (dict(task='binary', classes=('a', 'b')), 'only apply to a multiclass'),
    (dict(task='multiclass', min_rows_per_class=0), 'at least 1'),
])
def test_label_rule_refuses_inconsistent_settings(fields, phrase):
  with pytest.raises(ValueError, match=phrase):
    contract.LabelRule(LABEL, **fields)
