"""Gradient rules: each maps the flat forget and retain gradients of a step to one direction."""

from ._base import GradientRule
from .cagrad import CAGrad
from .cup import CUP
from .ft import FT
from .ga import GA
from .mgda import MGDA
from .neggrad_plus import NegGradPlus
from .ngdiff import NGDiff
from .pcgrad import PCGrad
from .weighted_sum import WeightedSum

__all__ = ["CAGrad", "CUP", "FT", "GA", "GradientRule", "MGDA", "NGDiff", "NegGradPlus", "PCGrad", "WeightedSum"]
