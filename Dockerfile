# The pipeline image: TFX 1.16 plus this project, built from this repo.
#   - Vertex AI Pipelines / Kubeflow V2: every component runs in it
#     (runners/kubeflow_runner.py --image). The compiled spec gives each
#     container its command, so the ENTRYPOINT below does not apply there.
#   - Dataflow workers: --sdk-container-image. Dataflow starts the
#     ENTRYPOINT, Beam's worker boot.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/tfx-tabular-pipeline:TAG .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/tfx-tabular-pipeline:TAG

# Beam's worker boot, from the SDK image of the apache-beam version pinned in
# requirements.lock (tests/test_kubeflow_spec.py checks they agree).
FROM apache/beam_python3.10_sdk:2.61.0 AS beam

FROM gcr.io/tfx-oss-public/tfx:1.16.0

# tf.keras must be tf-keras (Keras 2) in every process; models/keras_choice.py.
ENV TF_USE_LEGACY_KERAS=1

# requirements.lock was resolved for Python 3.10; refuse any other base.
RUN python -c "import sys; assert sys.version_info[:2] == (3, 10), sys.version"

# 1. Dependencies: the runtime lock, the complete resolved set, so --no-deps
#    installs exactly it and never re-resolves. Tests and tools (pytest,
#    ruff, build, uv) are only in requirements-dev.lock, which the venv and
#    CI install; every version the two locks share is the same.
COPY requirements.lock /tmp/build/requirements.lock
RUN python -m pip install --no-cache-dir --no-deps \
      -r /tmp/build/requirements.lock

# 2. This project, built from pyproject.toml (setup.py defers to it; the
#    same package that Dataflow's --setup_file builds), installed into a
#    fixed folder: the compiled pipeline spec names files inside it, e.g.
#    the curated schema at /opt/pipeline/schema/taxi/schema.pbtxt
#    (pipeline/cloud/settings.py: CONTAINER_PACKAGE_DIR). Its console
#    scripts (tabular-run, tabular-serve, ...) land in /opt/pipeline/bin,
#    put on PATH. The source copy is deleted, so code can only be imported
#    from the installed package.
COPY . /tmp/build/src
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation \
      --target /opt/pipeline /tmp/build/src \
    && rm -rf /tmp/build
ENV PYTHONPATH="/opt/pipeline${PYTHONPATH:+:${PYTHONPATH}}"
ENV PATH="/opt/pipeline/bin:${PATH}"

COPY --from=beam /opt/apache/beam /opt/apache/beam
ENTRYPOINT ["/opt/apache/beam/boot"]

# Fail the build, not a pipeline run, if the code or the schema is missing.
RUN cd / && python -c "\
import schema, models.keras_choice, models.preprocessing, models.train, \
models.metrics, pipeline.components.anomaly_gate; \
models.keras_choice.require_legacy_keras(); \
path = schema.schema_path('taxi'); \
assert path == '/opt/pipeline/schema/taxi/schema.pbtxt', path" \
    && tabular-run --help > /dev/null
