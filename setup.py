"""Kept for Dataflow: the package itself is declared in pyproject.toml.

Beam's `--setup_file` must name a file called setup.py: the Dataflow runner
passes this one (pipeline/cloud/settings.py: SETUP_FILE), Beam builds the
sdist from its folder and every worker installs it. setuptools reads the
name, version, packages, package data and console scripts from
pyproject.toml's [project] and [tool.setuptools] tables, so nothing is
repeated here.

    pip install --no-deps .       # what workers and the image do
    make venv                     # an editable install, for development
"""

import setuptools

setuptools.setup()
