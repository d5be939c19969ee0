"""The input check: the data is read once and refused before any component.

A bad file, a column the curated schema does not know, or a label the task
cannot use is refused here, as one line naming the file, line or row, and
column, with what to do, before TensorFlow is imported (the local runner
and the Dataflow runner call it first). Distribution problems (missing
values, out-of-range numbers, unseen categories, drift) are left to
ExampleValidator and the gates, which see the whole dataset.

    driver.py        the one driver: check, check_without_schema, check_sql
    problems.py      Problem, InputCheckError, the exit code
    contract.py      what the input must hold: Expectations, LabelRule
    columns.py       the column checks every format shares
    labels.py        the label tally
    folder.py        the data folder's files
    reader.py        what a reader gives the driver; one per format:
    csv_reader.py, parquet_reader.py, avro_reader.py, tfrecord_reader.py
                     (+ records.py, tf_example_records.py), sql_reader.py

This package imports no TensorFlow, TFX or Beam (tests/test_architecture.py).
Its `__init__` imports nothing: callers import the module they use, so
that no module of the package imports the package's own `__init__` back.
"""
