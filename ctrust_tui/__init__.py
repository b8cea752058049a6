"""ctrust: what compressing an LLM does to its trustworthiness.

The package root stays import-light on purpose: `ctrust browse`, `ctrust --help` and the
pure layers (`store`, `trust`) must start without importing torch or transformers.
"""

__version__ = "0.1.0"
