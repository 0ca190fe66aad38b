"""``steerlab study``: the source paper's whole study from one config (see
:mod:`steerlab.study.pipeline` for the driver, :mod:`steerlab.study.stages` for the stages,
:mod:`steerlab.study.context` for the shared paths and cache keys, and
:mod:`steerlab.study.results` for the typed results the report reads)."""

from steerlab.study.config import ConfigError, StudyConfig, load_config, parse_config
from steerlab.study.context import StudyContext, StudyPaths
from steerlab.study.pipeline import STAGES, Study, plan
from steerlab.study.results import StudyResults

__all__ = [
    "STAGES",
    "ConfigError",
    "Study",
    "StudyConfig",
    "StudyContext",
    "StudyPaths",
    "StudyResults",
    "load_config",
    "parse_config",
    "plan",
]
