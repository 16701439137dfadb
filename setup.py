"""setuptools' package list (everything else is in pyproject.toml).

The code packages, plus the shipped checkpoints as the data package ``gsc_checkpoints``
(the repository's ``checkpoints/`` folder), so a wheel or a non-editable ``pip install .``
carries the weights the shipped commands load.
"""

from setuptools import find_packages, setup

CODE_PACKAGES = ["gsc_cli*", "gsc_phy*", "gsc_stream*", "gsc_semantic*", "bridge*", "flowgraphs*",
                 "hardware*"]

setup(packages=find_packages(include=CODE_PACKAGES) + ["gsc_checkpoints"],
      package_dir={"gsc_checkpoints": "checkpoints"})
