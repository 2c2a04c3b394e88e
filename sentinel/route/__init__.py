"""Alert routing: the routing tree, grouping, dedup, inhibition, silences, escalation and the incident clock.

Route works from the alert model and its own tables; it never talks to a channel (that is ``sentinel.notify``).
"""
