"""The package version, apart so that any layer can read it without importing the rest."""

__version__ = "0.1.0"
