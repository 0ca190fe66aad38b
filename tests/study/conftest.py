"""The micro study (configs/micro.toml), run once per session in process."""

from __future__ import annotations

import pytest

from steerlab.study import Study, load_config
from tests.study.micro import MICRO


@pytest.fixture(scope="session")
def micro(tmp_path_factory) -> Study:
    """The whole micro study, run once (every stage's units stored)."""
    study = Study(load_config(MICRO), tmp_path_factory.mktemp("micro-stages"), progress=False)
    study.run()
    return study
