"""Runs the pipeline here: TFX launchers, SQLite or MySQL MLMD, DirectRunner.

    python runners/local_runner.py --data-root data/taxi --output-dir outputs
    python runners/local_runner.py --data-root DIR --label COLUMN \
        --task {binary,multiclass,regression} --output-dir OUT
    MYSQL_PWD=... python runners/local_runner.py --output-dir outputs \
        --metadata-url mysql://USER@HOST:3306/DATABASE
    SQL_PASSWORD=... python runners/local_runner.py --output-dir outputs \
        --sql-url postgresql://USER@HOST:5432/DATABASE \
        --query 'SELECT * FROM trips'

The command itself is `pipeline.local.command`, so that the installed
console script `tabular-run` is the same command without this file.
"""

from pipeline.local import process_exit
from pipeline.local.command import main

__all__ = ['main']

if __name__ == '__main__':
  process_exit.exit_process(main())
