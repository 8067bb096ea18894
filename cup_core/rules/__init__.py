"""Gradient rules: each maps the flat forget and retain gradients of a step to one direction."""

from ._base import GradientRule
from .cup import CUP

__all__ = ["CUP", "GradientRule"]
