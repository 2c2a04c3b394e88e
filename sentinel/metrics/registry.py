"""Every metric sentinel exports, defined once on a registry that is passed in.

Label sets are bounded: sources, rules, receivers and outcomes come from configuration, never
from event content (no user names or IPs as labels).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from sentinel import __version__

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# From a minute to three days: acknowledgement targets run in minutes, resolution in hours to days.
RESPONSE_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 259200.0)

# The closed label vocabularies of the security metrics: anything else is counted as "other", so a
# log line can never mint a new series (no user, address, patient, file or destination names).
SIGN_IN_METHODS = ("password", "publickey", "keyboard_interactive", "sso", "certificate", "mfa", "other",
                   "unknown")
OUTCOMES = ("success", "failure", "unknown")
MFA_KINDS = ("challenge", "denial", "failure", "success")
PHI_ACCESS_ACTIONS = ("phi_view", "phi_search")
PHI_EXPORT_ACTIONS = ("phi_export", "phi_print", "phi_download")
DESTINATION_TYPES = ("email", "printer", "file", "sftp", "external_host", "removable_media", "cloud_storage",
                     "fax", "other", "unknown")
INCIDENT_CLOCKS = ("business_associate", "breach")
# The HIPAA Security Rule controls the rule pack is mapped to (DESIGN.md's anchors): each one is reported,
# covered or not, so a control no enabled rule supports shows as a gap instead of being absent.
HIPAA_CONTROLS = ("164.308(a)(1)(ii)(D)", "164.308(a)(5)(ii)(C)", "164.308(a)(6)", "164.312(a)(1)",
                  "164.312(a)(2)(i)", "164.312(a)(2)(iii)", "164.312(b)", "164.312(c)(1)", "164.312(d)",
                  "164.312(e)(1)")


class Metrics:
    """The metric objects, bound to one registry (tests make a fresh one each)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.build_info = Info("sentinel_build", "Version of the running sentinel", registry=r)
        self.build_info.info({"version": __version__})
        self.lines_read = Counter("sentinel_lines_read", "Records framed from source files", ["source"], registry=r)
        self.bytes_read = Counter("sentinel_bytes_read", "Bytes read from source files", ["source"], registry=r)
        self.events = Counter("sentinel_events", "Events stored, by parse outcome", ["source", "outcome"], registry=r)
        self.lines_truncated = Counter("sentinel_lines_truncated", "Lines cut at the line size limit",
                                       ["source"], registry=r)
        self.invalid_utf8 = Counter("sentinel_lines_invalid_utf8", "Lines with invalid UTF-8 (kept, replaced)",
                                    ["source"], registry=r)
        self.file_problems = Counter("sentinel_file_problems", "Files that could not be followed, by kind",
                                     ["source", "kind"], registry=r)
        self.rotations = Counter("sentinel_file_rotations", "Rotations, truncations and new files seen",
                                 ["source", "kind"], registry=r)
        self.lost_bytes = Counter("sentinel_file_lost_bytes", "Bytes gone from every file before they could be "
                                  "read (each loss is also logged with its byte range)", ["source"], registry=r)
        self.lag_bytes = Gauge("sentinel_checkpoint_lag_bytes", "Bytes written to a source's files not yet committed",
                               ["source"], registry=r)
        self.lag_seconds = Gauge("sentinel_checkpoint_lag_seconds",
                                 "Age of the oldest uncommitted write in a source's files", ["source"], registry=r)
        self.source_gaps = Counter("sentinel_source_gaps", "Times a source lost records before they were read "
                                   "(journal entries vacuumed first)", ["source", "kind"], registry=r)
        self.source_restarts = Counter("sentinel_source_reader_restarts",
                                       "A source's reader (journalctl) ended and was restarted, by reason",
                                       ["source", "reason"], registry=r)
        # API pollers (type: api): label values are the configured source and the provider's stream names.
        self.api_pages = Counter("sentinel_api_pages", "Pages an API poller fetched", ["source", "stream"], registry=r)
        self.api_events = Counter("sentinel_api_events", "Events an API poller fetched (a page fetched again "
                                  "after a restart counts again; the store keeps each once)", ["source", "stream"],
                                  registry=r)
        self.api_late_events = Counter("sentinel_api_late_pass_events", "Events the late passes of a time-window "
                                       "poller fetched (asked again from late_window_hours back, for events the "
                                       "provider published late; those already stored are dropped by id)",
                                       ["source", "stream"], registry=r)
        self.api_errors = Counter("sentinel_api_errors", "Failed API requests, by kind (throttled, unavailable, "
                                  "network, unauthorized, token, ...)", ["source", "stream", "kind"], registry=r)
        self.api_last_success = Gauge("sentinel_api_last_success_timestamp_seconds",
                                      "When an API poller last fetched a page", ["source", "stream"], registry=r)
        self.api_backlog_seconds = Gauge("sentinel_api_backlog_seconds", "How long an API poller has been failing "
                                         "(the outage its backlog covers); 0 when the provider answers",
                                         ["source", "stream"], registry=r)
        self.api_lag_seconds = Gauge("sentinel_api_lag_seconds", "Age of the newest event an API poller has "
                                     "fetched", ["source", "stream"], registry=r)
        self.api_tokens = Counter("sentinel_api_token_fetches", "Access tokens fetched (first and refreshed)",
                                  ["source"], registry=r)
        self.syslog_problems = Counter("sentinel_syslog_problems", "Network syslog input survived and counted "
                                       "(garbage, oversized, denied, rate_limited, tls_failed, idle_timeout…)",
                                       ["source", "kind"], registry=r)
        self.files_open = Gauge("sentinel_files_followed", "Files followed", ["source"], registry=r)
        self.batch_seconds = Histogram("sentinel_batch_commit_duration_seconds", "Time to commit one batch",
                                       buckets=BATCH_BUCKETS, registry=r)
        self.batch_events = Histogram("sentinel_batch_events", "Events per committed batch",
                                      buckets=(1, 10, 100, 500, 1000, 2000, 4096, 8192), registry=r)
        self.last_event_time = Gauge("sentinel_source_last_event_timestamp_seconds",
                                     "When a source last produced an event", ["source"], registry=r)
        self.retention_deleted = Counter("sentinel_store_retention_deleted_events",
                                         "Events deleted by retention", ["reason"], registry=r)
        self.store_bytes = Gauge("sentinel_store_size_bytes", "Size of the local database", registry=r)
        self.storage_full = Gauge("sentinel_storage_full",
                                  "1 while the state directory's file system is full (reading paused)", registry=r)
        self.storage_full_rollbacks = Counter("sentinel_storage_full_rollbacks",
                                              "Batches rolled back because the disk was full (read again later)",
                                              registry=r)
        self.paused = Gauge("sentinel_collection_paused", "1 while collection waits for the sink (backpressure)",
                            registry=r)

        # --- detection (sentinel.detect) ---
        self.rule_evaluations = Counter("sentinel_rule_evaluations", "Events evaluated by a rule", ["rule"],
                                        registry=r)
        self.rule_matches = Counter("sentinel_rule_matches", "Events that passed a rule's filter", ["rule"],
                                    registry=r)
        self.rule_state_keys = Gauge("sentinel_rule_state_keys", "Keys held in a rule's state", ["rule"], registry=r)
        self.rule_state_bytes = Gauge("sentinel_rule_state_bytes",
                                      "Memory a rule's state is counted at (bounded by max_state_mb_per_rule)",
                                      ["rule"], registry=r)
        self.rule_state_evictions = Counter("sentinel_rule_state_evictions",
                                            "Keys evicted from a rule's state at the key limit", ["rule"], registry=r)
        self.rule_entities_learning = Gauge(
            "sentinel_rule_entities_learning",
            "Entities (accounts) a learning rule is still learning and will not alert on yet", ["rule"], registry=r)
        self.rule_errors = Counter("sentinel_rule_errors", "Rule evaluation errors", ["rule"], registry=r)
        self.alerts = Counter("sentinel_alerts", "Alerts raised", ["rule", "severity"], registry=r)
        self.dormant_accounts = Gauge("sentinel_dormant_accounts", "Accounts idle beyond the dormancy threshold",
                                      registry=r)
        self.rule_last_evaluation = Gauge("sentinel_rule_last_evaluation_timestamp_seconds",
                                          "When a rule last evaluated an event", ["rule"], registry=r)
        self.control_covered = Gauge("sentinel_hipaa_control_covered",
                                     "1 when an enabled rule supporting the HIPAA control evaluated events in the "
                                     "last 24 hours", ["control"], registry=r)
        # --- the security picture (counted from committed events and the alert table) ---
        self.sign_ins = Counter("sentinel_sign_ins", "Sign-in attempts by source, outcome and method",
                                ["source", "outcome", "method"], registry=r)
        self.mfa = Counter("sentinel_mfa_events", "MFA challenges, denials, failures and successes by source",
                           ["source", "kind"], registry=r)
        self.phi_accessed = Counter("sentinel_phi_records_accessed", "PHI records viewed or searched, by action",
                                    ["action"], registry=r)
        self.phi_exported = Counter("sentinel_phi_records_exported",
                                    "PHI records exported, printed or downloaded, by action and destination type",
                                    ["action", "destination_type"], registry=r)
        self.alerts_open = Gauge("sentinel_alerts_open", "Alerts not yet resolved", ["severity"], registry=r)
        self.alerts_unacknowledged = Gauge("sentinel_alerts_unacknowledged", "Open alerts nobody acknowledged",
                                           ["severity"], registry=r)
        self.ack_seconds = Histogram("sentinel_alert_acknowledge_duration_seconds",
                                     "Time from an alert being raised to its acknowledgement", ["severity"],
                                     buckets=RESPONSE_BUCKETS, registry=r)
        self.resolve_seconds = Histogram("sentinel_alert_resolve_duration_seconds",
                                         "Time from an alert being raised to its resolution", ["severity"],
                                         buckets=RESPONSE_BUCKETS, registry=r)
        self.incident_deadline = Gauge("sentinel_incident_clock_deadline_seconds",
                                       "Seconds until the nearest notification deadline of an unacknowledged "
                                       "incident (negative: missed)", ["clock"], registry=r)
        # --- routing and delivery (sentinel.route, sentinel.notify) ---
        self.notifications = Counter("sentinel_notifications", "Notification attempts by receiver and outcome",
                                     ["receiver", "outcome"], registry=r)
        self.notification_seconds = Histogram("sentinel_notification_delivery_duration_seconds",
                                              "Time from alert detection to delivery", ["receiver"],
                                              buckets=(*BATCH_BUCKETS, 10.0, 30.0, 60.0, 300.0), registry=r)
        self.outbox_depth = Gauge("sentinel_outbox_depth", "Notifications waiting for delivery", registry=r)
        self.outbox_oldest = Gauge("sentinel_outbox_oldest_age_seconds", "Age of the oldest undelivered notification",
                                   registry=r)
        self.silenced = Counter("sentinel_notifications_silenced", "Notifications suppressed by a silence",
                                ["receiver"], registry=r)
        self.escalations = Counter("sentinel_escalations", "Unacknowledged alerts escalated", ["severity"],
                                   registry=r)
        # --- Elasticsearch (sentinel.store.elasticsearch) ---
        self.es_bulk_seconds = Histogram("sentinel_elasticsearch_bulk_duration_seconds", "Bulk request duration",
                                         buckets=(*BATCH_BUCKETS, 10.0, 30.0), registry=r)
        self.es_docs = Counter("sentinel_elasticsearch_documents", "Documents shipped by result", ["result"],
                               registry=r)
        self.es_retries = Counter("sentinel_elasticsearch_retries", "Bulk requests retried", registry=r)
        self.es_dead_letters = Counter("sentinel_elasticsearch_dead_letters",
                                       "Documents parked in the dead-letter table", registry=r)
        self.spool_depth = Gauge("sentinel_spool_depth", "Events spooled, not yet in Elasticsearch", registry=r)
        self.spool_bytes = Gauge("sentinel_spool_bytes", "Bytes of events spooled", registry=r)
        self.es_up = Gauge("sentinel_elasticsearch_up", "1 when the last request to Elasticsearch succeeded",
                           registry=r)
        # --- lifecycle (sentinel.daemon) ---
        self.reloads = Counter("sentinel_config_reloads", "Configuration reloads by result", ["result"], registry=r)
        self.last_reload = Gauge("sentinel_config_last_reload_timestamp_seconds", "When config was last loaded",
                                 registry=r)
        self.last_reload_ok = Gauge("sentinel_config_last_reload_successful", "1 if the last reload succeeded",
                                    registry=r)
        self.started = Gauge("sentinel_start_time_seconds", "When the daemon started", registry=r)
        self.audit_records = Gauge("sentinel_audit_records", "Sequence number of the last audit record written",
                                   registry=r)
        self.draining = Gauge("sentinel_draining", "1 while the daemon drains before exiting", registry=r)
