"""cup_core: controllable machine unlearning (CUP) and its baselines, swept, cached and compared.

Data flows one way: config -> sweep -> cache -> frontier table -> figures.
"""

from .config import ExperimentConfig, ForgetSet, TrainRecipe, UnlearnRecipe
from .data import default_config
from .device import resolve_device
from .experiment import Experiment
from .export import export_point, load_exported
from .methods import METHODS, get_method
from .pool import read_summary
from .report import frontier_table, summary
from .settings import SettingError, SweepSettings
from .sweep import SweepPlan, SweepProgress, run_sweep

__all__ = [
    "METHODS", "Experiment", "ExperimentConfig", "ForgetSet", "SweepPlan", "SweepProgress", "TrainRecipe",
    "UnlearnRecipe", "default_config", "export_point", "frontier_table", "get_method", "load_exported",
    "SettingError", "SweepSettings", "read_summary", "resolve_device", "run_sweep", "summary",
]
