"""API poll sources (``type: api``): the poller framework, HTTP and credentials, and one module per provider."""
