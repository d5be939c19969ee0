"""Packages the pipeline code so Dataflow workers and containers import it.

    pip install .            # what workers and the image do
    pip install -e .         # what `make` does for development
"""

import setuptools

setuptools.setup(
    name='tfx-tabular-pipeline',
    version='0.1.0',
    description='A production TFX pipeline for tabular data: binary, multiclass and regression, served over REST.',
    python_requires='>=3.9,<3.11',
    packages=setuptools.find_packages(include=['pipeline', 'pipeline.*',
                                               'models', 'models.*',
                                               'schema', 'schema.*',
                                               'serving', 'serving.*']),
    package_data={'schema': ['*/*.pbtxt', '*/*.yaml'],
                  # The HTML report's Jinja2 templates and CSS.
                  'pipeline.inspection': ['templates/*'],
                  # The monitoring report's template.
                  'serving': ['templates/*']},
    include_package_data=True,
    # Workers get the pinned dependencies from the image or the Dataflow
    # environment; listing them here would let pip re-resolve them.
    install_requires=[],
)
