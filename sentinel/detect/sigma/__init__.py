"""Sigma rules (``*.yml`` in a rules folder), parsed by pySigma and evaluated natively by sentinel's engine."""
