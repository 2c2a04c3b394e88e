"""Notification: the delivery worker (apprise, retries, fallback), PHI-safe templates and redaction, the alert API."""
