"""digestbot: a self-hosted research-paper digest bot."""

__version__ = "0.1.0"
