"""The alert HTTP API on the daemon: responders list, acknowledge and resolve alerts and manage silences.

Beside ``cli``: both are front doors to route's lifecycle and silences, so neither belongs to delivery."""
