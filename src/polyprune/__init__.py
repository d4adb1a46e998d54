"""polyprune: structured pruning of multilingual pretrained encoders."""

__version__ = "0.1.0"
