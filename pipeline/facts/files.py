"""The names of the files and folders the project writes and reads.

A local run's output dir (`--output-dir`), as `layout.OutputLayout` puts
it together:

    pipeline_root/     TFX artifacts, one folder per component
    metadata.sqlite    ML Metadata (without --metadata-url)
    serving_model/     the pushed models, one folder per version
    report.html        the latest run's report; reports/ keeps each run's
    mlflow.db, mlruns/ MLflow's store and artifacts (without --mlflow-uri)
    draft/             a zero-config run's drafted dataset.yaml and schema
    logs/              a local run's log file: what the libraries logged
    request_logs/      the REST server's request logs
    .run.lock          held while a run writes here

A dataset folder (`schema/<name>/`, or a draft) holds `dataset.yaml` and
the curated schema `schema.pbtxt`.
"""

PIPELINE_ROOT_DIR = 'pipeline_root'
METADATA_FILE = 'metadata.sqlite'
SERVING_MODEL_DIR = 'serving_model'
LATEST_REPORT = 'report.html'
REPORTS_DIR = 'reports'
MLFLOW_DB_FILE = 'mlflow.db'
MLFLOW_ARTIFACTS_DIR = 'mlruns'
DRAFT_DIR = 'draft'
LOG_DIR = 'logs'
REQUEST_LOG_DIR = 'request_logs'
LOCK_FILE = '.run.lock'

DATASET_CONFIG_FILE = 'dataset.yaml'
SCHEMA_FILE = 'schema.pbtxt'
