"""The one-command nightly pipeline: ``run_pipeline(db, config)`` (see :mod:`.run`).

Sits on top of :mod:`pricelab.api` (each step is one API call, plus the registry's gate);
the config schema is in :mod:`.config`.
"""

from pricelab.pipeline.config import DEFAULTS, load_pipeline_config, validate_config
from pricelab.pipeline.inputs import input_files
from pricelab.pipeline.run import STEPS, PipelineResult, Step, run_pipeline

__all__ = [
    "DEFAULTS",
    "STEPS",
    "PipelineResult",
    "Step",
    "input_files",
    "load_pipeline_config",
    "run_pipeline",
    "validate_config",
]
