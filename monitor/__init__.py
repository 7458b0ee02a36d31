"""Guarantee Watch: monitor news feeds for security guarantees for Ukraine."""

__version__ = "0.1.0"
