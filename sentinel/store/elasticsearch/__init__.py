"""Elasticsearch backend: the spool sink, the shipper, index management, search and the fleet analyzer."""
