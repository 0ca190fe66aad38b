"""``steerlab study``: the source paper's whole study from one config (see
:mod:`steerlab.study.pipeline` for the stages and the output layout)."""

from steerlab.study.config import ConfigError, StudyConfig, load_config, parse_config
from steerlab.study.pipeline import STAGES, Study, plan

__all__ = ["STAGES", "ConfigError", "Study", "StudyConfig", "load_config", "parse_config", "plan"]
