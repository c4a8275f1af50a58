"""harness: compare deep-learning frameworks honestly on one framework-neutral model spec."""

__version__ = "0.1.0"
