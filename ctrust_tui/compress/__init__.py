"""Compression suite. `spec` is pure Python; the algorithm modules import torch lazily."""

from .spec import METHODS, CompressionSpec, MethodInfo, parse_spec, parse_specs, validate

__all__ = ["METHODS", "CompressionSpec", "MethodInfo", "parse_spec", "parse_specs", "validate"]
