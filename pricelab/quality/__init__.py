"""Data-quality checks on input frames and on what is loaded."""

from pricelab.quality.checks import Issue, QualityReport
from pricelab.quality.frames import validate_frame
from pricelab.quality.tables import check_loaded

__all__ = ["Issue", "QualityReport", "check_loaded", "validate_frame"]
