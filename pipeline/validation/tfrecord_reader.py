"""TFRecord files of tf.Examples, as ImportExampleGen reads them (`.gz`
names gzip-compressed), without TensorFlow (`tf_example_records`)."""

from __future__ import annotations

from pipeline.definition import input_formats
from pipeline.facts import kinds
from pipeline.validation import records
from pipeline.validation import tf_example_records


class TFRecordFile(records.FileReader):
  """One TFRecord file; its columns are known once every row was read."""

  def label_cells(self) -> records.LabelCells:
    self.columns.sparse = True
    found = self.columns.kinds
    row = 0
    try:
      with tf_example_records.open_records(self.path) as f:
        for data in tf_example_records.records(f):
          row += 1
          example = tf_example_records.parse_example(data, row)
          for name, (feature_list, _) in example.items():
            kind = kinds.KIND_OF_FEATURE_LIST.get(feature_list)
            known = found.get(name)
            if kind is None:
              found.setdefault(name, None)
            elif known is None:
              found[name] = kind
            elif known != kind:
              raise records.ReadError(
                  f"feature '{name}' holds {kind} values here but "
                  f'{known} values in earlier rows; a feature needs one '
                  'type in every example', row)
          yield row, list(example.get(self.label_key, ('', []))[1])
    except tf_example_records.RecordError as e:
      raise records.ReadError(str(e), e.record) from e
    except OSError as e:
      raise records.ReadError(str(e), row + 1) from e


READER = records.RecordReader(input_formats.TFRECORD, TFRecordFile)
