"""Randomised price experiments: design (stratified randomisation, balance, power) and analysis.

Observational elasticities are confounded; a randomised price test measures the
price response of a set of units directly. :func:`design_experiment` assigns
units to price cells and reports balance and power; :func:`analyze_experiment`
estimates effects on units, revenue and profit and the elasticity.
"""

from pricelab.experiment.analyze import analyze_experiment
from pricelab.experiment.design import cell_label, design_experiment
from pricelab.experiment.results import ExperimentAnalysis, ExperimentDesign

__all__ = [
    "ExperimentAnalysis",
    "ExperimentDesign",
    "analyze_experiment",
    "cell_label",
    "design_experiment",
]
