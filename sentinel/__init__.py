"""sentinel: security log monitoring and alerting for PHI-handling organisations."""

__version__ = "0.1.0"
