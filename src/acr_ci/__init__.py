"""acr-ci: a container image delivery chain for the CI you already use."""

__version__ = "0.1.0"
