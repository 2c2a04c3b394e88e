"""Typed model of ``config/sentinel.yaml``; unknown keys are rejected so typos surface."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sentinel.credentials import is_reference
from sentinel.shipped import shipped_path


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SqliteSettings(Strict):
    path: str = "events.db"
    retention_days: float = Field(default=2190, gt=0, description="delete events older than this")
    max_size_mb: float = Field(default=10240, gt=0, description="delete oldest events beyond this size")
    retention_check_seconds: float = Field(default=300, gt=0)


class AnalyzerSettings(Strict):
    """Fleet-wide detections the analyzer role runs as scheduled Elasticsearch queries."""

    enabled: bool = Field(default=False, description="run the analyzer inside `sentinel run` too")
    interval_seconds: float = Field(default=300, gt=0)
    dormant_days: float = Field(default=90, gt=0, description="an account idle this long is dormant")
    dormant_lookback_days: float = Field(default=400, gt=0, description="how far back to look for last activity")
    baseline_days: int = Field(default=30, gt=1, description="days of per-user export history")
    baseline_min_days: int = Field(default=5, gt=0, description="history days needed before judging a user")
    baseline_sigma: float = Field(default=3.0, gt=0)
    baseline_factor: float = Field(default=3.0, gt=1, description="and at least this multiple of the mean")
    baseline_min_records: int = Field(default=500, ge=0, description="ignore days below this many records")
    baseline_actions: list[str] = ["phi_export", "phi_download", "phi_print"]
    spray_window_minutes: float = Field(default=15, gt=0)
    spray_min_users: int = Field(default=10, gt=1, description="distinct users failing from one source.ip")
    spray_min_hosts: int = Field(default=2, gt=0, description="across at least this many hosts")


def _secret_reference(value: str | None) -> str | None:
    if value is None or is_reference(value):
        return value
    raise ValueError("expected a reference such as ${ES_API_KEY} or file:/etc/sentinel/es.key, never the secret "
                     "itself")


class ElasticsearchSettings(Strict):
    hosts: list[str] = ["https://127.0.0.1:9200"]
    api_key: str | None = Field(default=None, description="${ENV} or file:/path, never the key itself")
    username: str | None = None
    password: str | None = Field(default=None, description="${ENV} or file:/path")
    ca_certs: str | None = None
    verify_certs: bool = True
    index_prefix: str = Field(default="sentinel", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    bulk_max_docs: int = Field(default=2000, gt=0)
    bulk_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    flush_interval_ms: int = Field(default=200, gt=0)
    concurrency: int = Field(default=2, ge=1, le=16)
    max_retries: int = Field(default=8, ge=0, description="retries of a document Elasticsearch rejected with 429/5xx")
    retry_max_backoff_seconds: float = Field(default=30, gt=0)
    spool_max_mb: float = Field(default=2048, gt=0)
    retention_days: int = Field(default=2190, gt=0, description="six years, HIPAA documentation retention")
    rollover_max_age_days: int = Field(default=30, gt=0)
    rollover_max_primary_shard_gb: int = Field(default=50, gt=0)
    lifecycle: Literal["auto", "ilm", "sentinel"] = Field(
        default="auto", description="ilm: the cluster's lifecycle policy; sentinel: rollover and delete ourselves"
    )
    housekeeping_seconds: float = Field(default=3600, gt=0, description="rollover/retention check interval")
    number_of_shards: int = Field(default=1, gt=0)
    number_of_replicas: int = Field(default=1, ge=0)
    request_timeout: float = Field(default=30, gt=0)
    analyzer: AnalyzerSettings = AnalyzerSettings()

    @field_validator("api_key", "password")
    @classmethod
    def _no_inline_secret(cls, value: str | None) -> str | None:
        return _secret_reference(value)


class StorageSettings(Strict):
    backend: Literal["sqlite", "elasticsearch"] = "sqlite"
    reserve_mb: float = Field(
        default=8, ge=0, description="space kept in state_dir as a file, released when the disk fills so the "
                                     "audit record of it can still be written; 0: none")
    full_retry_seconds: float = Field(default=5, gt=0, description="while the disk is full, how often to look "
                                                                  "for space again")
    sqlite: SqliteSettings = SqliteSettings()
    elasticsearch: ElasticsearchSettings = ElasticsearchSettings()


class PipelineSettings(Strict):
    batch_max_lines: int = Field(default=16384, gt=0)
    batch_max_wait_ms: int = Field(default=100, gt=0, le=10_000)
    poll_interval_ms: int = Field(default=250, gt=0)
    read_chunk_bytes: int = Field(default=1 << 20, ge=4096)
    max_line_bytes: int = Field(default=1 << 20, ge=256, description="longer lines are truncated and flagged")
    start_position: Literal["beginning", "end"] = Field(
        default="end", description="where to start in files never seen before, on first start"
    )
    max_open_files: int = Field(default=512, gt=0)
    use_watchdog: bool = True
    decode_workers: int = Field(
        default=0, ge=0, le=16,
        description="processes that decode while the daemon stores: a backlog (after an outage or a burst) is "
                    "caught up on more cores; 0 decodes in the daemon itself")


_JOURNAL_MATCH = r"^[A-Z0-9_]+=.*$"


class JournalSourceSettings(Strict):
    """Which journal a ``type: journal`` source reads, and what in it (overriding the collector's defaults)."""

    directory: str | None = Field(default=None, description="journal files in this directory instead of the "
                                  "system journal (journalctl --directory)")
    files: list[str] = Field(default=[], description="journal files (journalctl --file; globs allowed)")
    identifiers: list[str] | None = Field(default=None, description="SYSLOG_IDENTIFIER values to follow")
    units: list[str] | None = Field(default=None, description="systemd units to follow (_SYSTEMD_UNIT)")
    matches: list[Annotated[str, Field(pattern=_JOURNAL_MATCH)]] | None = Field(
        default=None, description="further FIELD=value journal matches, each an alternative")


_LISTEN = r"^(udp|tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]*):\d{1,5}$"


class SyslogSourceSettings(Strict):
    """A ``type: syslog`` source: the network syslog receiver (RFC 3164 and 5424 over UDP, TCP and TLS)."""

    listen: list[Annotated[str, Field(pattern=_LISTEN)]] = Field(
        default=[], description="udp://host:port, tcp://host:port, tls://host:port; systemd socket activation "
                                "(sentinel-syslog.socket) passes privileged ports in")
    tls_cert: str | None = Field(default=None, description="PEM server certificate (chain) for tls:// listeners")
    tls_key: str | None = Field(default=None, description="PEM private key, if not inside tls_cert")
    tls_client_ca: str | None = Field(default=None, description="require client certificates signed by this CA")
    allow: list[str] = Field(default=[], description="sender networks allowed (CIDR); empty: any sender")
    rate_per_sender: float = Field(default=0, ge=0, description="messages/s per sender address; 0: unlimited")
    rate_burst: int = Field(default=1000, gt=0)
    max_message_bytes: int = Field(default=256 * 1024, ge=65536, description="longer messages are cut and flagged")
    idle_timeout_seconds: float = Field(default=300, gt=0, description="close connections silent this long")

    @field_validator("allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not a network; expected CIDR such as 10.0.0.0/8") from None
        return value

    @model_validator(mode="after")
    def _tls(self) -> SyslogSourceSettings:
        if any(x.startswith("tls://") for x in self.listen) and not self.tls_cert:
            raise ValueError("a tls:// listener needs tls_cert (and tls_key unless the key is in it)")
        return self


_SECRET_REF = r"^(\$\{[A-Za-z_][A-Za-z0-9_]*\}|file:.+)$"
_API_NEEDS = {
    "okta": ("url",),  # and token, or client_id with private_key: see _okta_credentials
    "graph": ("tenant_id", "client_id", "client_secret"),
    "o365": ("tenant_id", "client_id", "client_secret"),
    "workspace": ("credentials", "subject"),
}
_API_STREAMS = {"okta": ("logs",), "graph": ("signIns", "directoryAudits"),
                "workspace": ("login", "admin", "drive", "token", "saml", "groups", "user_accounts"),
                "o365": ("Audit.Exchange", "Audit.SharePoint", "Audit.AzureActiveDirectory", "Audit.General",
                         "DLP.All")}


class ApiSourceSettings(Strict):
    """A ``type: api`` source: poll a provider's audit-log API. Secrets only by reference."""

    provider: Literal["okta", "graph", "o365", "workspace"] | None = Field(
        default=None, description="okta: System Log API; graph: Microsoft Graph audit logs (sign-ins, directory "
                                  "audits); o365: Office 365 Management Activity API; workspace: Google Workspace "
                                  "Reports API")
    url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$",
                            description="the API's base URL (Okta: https://ORG.okta.com; others have defaults)")
    token: str | None = Field(default=None, pattern=_SECRET_REF, description="Okta API token: ${ENV} or file:/path")
    tenant_id: str | None = Field(default=None, description="Entra tenant (directory) id")
    client_id: str | None = Field(default=None, description="the app registration's client id")
    client_secret: str | None = Field(default=None, pattern=_SECRET_REF, description="${ENV} or file:/path")
    token_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$",
                                  description="OAuth2 token endpoint (default: the provider's)")
    credentials: str | None = Field(default=None, pattern=_SECRET_REF,
                                    description="Google service-account key JSON: file:/path or ${ENV}")
    subject: str | None = Field(default=None, description="Workspace administrator the service account acts for")
    private_key: str | None = Field(default=None, pattern=_SECRET_REF,
                                    description="Okta service app's PEM private key (OAuth private_key_jwt, instead "
                                                "of token): file:/path or ${ENV}")
    key_id: str | None = Field(default=None, description="the kid of the Okta app's public key, when it has several")
    streams: list[str] | None = Field(default=None, description="what to poll (Graph: signIns, directoryAudits; "
                                      "o365: content types; workspace: applications); default: all the collector "
                                      "decodes")
    poll_interval_seconds: float = Field(default=60, gt=0, description="wait at the live end between polls")
    page_size: int | None = Field(default=None, gt=0, le=5000)
    backfill_hours: float = Field(default=24, ge=0, description="how far back a first start reads")
    overlap_seconds: float = Field(default=300, ge=0, description="time-window providers (Graph, Workspace, "
                                   "o365) ask again this far back, for events that arrive late; ids drop repeats")
    late_window_hours: float = Field(default=6, ge=0, description="Graph and Workspace: every late_every_minutes, "
                                     "one query reaches this far behind the newest event, for events the provider "
                                     "publishes later than overlap_seconds (hours, at times); ids drop repeats; "
                                     "0: never")
    late_every_minutes: float = Field(default=60, gt=0, description="how often the late_window_hours query runs")
    backoff_min_seconds: float = Field(default=1, gt=0)
    backoff_max_seconds: float = Field(default=300, gt=0)
    timeout_seconds: float = Field(default=30, gt=0)
    ca_file: str | None = Field(default=None, description="PEM CA to trust besides the system's (a TLS proxy)")

    @model_validator(mode="after")
    def _complete(self) -> ApiSourceSettings:
        if self.provider is None:
            return self
        missing = [name for name in _API_NEEDS[self.provider] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"an api source with provider {self.provider} needs {', '.join(missing)}")
        if self.provider == "okta":
            self._okta_credentials()
        known = _API_STREAMS.get(self.provider)
        unknown = [s for s in self.streams or () if known is not None and s not in known]
        if unknown:
            raise ValueError(f"provider {self.provider} has no stream {', '.join(unknown)}; expected some of "
                             f"{', '.join(known or ())}")
        return self

    def _okta_credentials(self) -> None:
        oauth = self.client_id is not None or self.private_key is not None
        if self.token is not None and oauth:
            raise ValueError("an okta api source takes either token (SSWS) or client_id with private_key (OAuth), "
                             "not both")
        if self.token is None and (self.client_id is None or self.private_key is None):
            raise ValueError("an okta api source needs token (an SSWS API token) or client_id and private_key "
                             "(an OAuth service app)")


class SourceSettings(Strict):
    collector: str = Field(description="name of a collector definition in collectors/")
    enabled: bool = True
    type: Literal["auto", "file", "journal", "syslog", "api"] = Field(
        default="auto",
        description="file: tail the paths; journal: follow the systemd journal; auto: the files when one of the "
                    "paths exists, else the journal if the collector has a journal part; syslog: receive it over "
                    "the network; api: poll a cloud provider's audit-log API")
    journal: JournalSourceSettings = JournalSourceSettings()
    api: ApiSourceSettings = ApiSourceSettings()
    syslog: SyslogSourceSettings = SyslogSourceSettings()
    paths: list[str] | None = Field(default=None, description="overrides the collector's default paths")
    host_name: str | None = None
    start_position: Literal["beginning", "end"] | None = None


class MetricsSettings(Strict):
    """The Prometheus endpoint (/metrics, /healthz, /readyz); localhost only unless told otherwise."""

    enabled: bool = True
    listen: str = Field(default="127.0.0.1:9464", pattern=r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]*):\d{1,5}$",
                        description="host:port or [v6]:port")
    username: str | None = Field(default=None, description="basic auth user; needs password")
    password: str | None = Field(default=None, pattern=r"^(\$\{[A-Za-z_][A-Za-z0-9_]*\}|file:/.+)$",
                                 description="${ENV} or file:/path, never the password itself")
    tls_cert: str | None = Field(default=None, description="PEM certificate (chain) file; enables HTTPS")
    tls_key: str | None = Field(default=None, description="PEM private key file, if not inside tls_cert")

    @model_validator(mode="after")
    def _pairs(self) -> MetricsSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both username and password")
        if self.tls_key and not self.tls_cert:
            raise ValueError("tls_key given without tls_cert")
        return self


class ApiSettings(Strict):
    enabled: bool = True
    listen: str = Field(default="127.0.0.1:9465", description="host:port; keep it on localhost unless proxied")
    token_file: str = Field(default="api.token", description="created (0600) in state_dir if missing")


class DetectionSettings(Strict):
    enabled: bool = True
    late_event_allowance_seconds: float = Field(default=300, ge=0)
    max_keys_per_rule: int = Field(default=100_000, gt=0)
    max_state_mb_per_rule: float = Field(
        default=16, gt=0, description="a rule's state in memory, in MiB (keys held as JSON, plus ~160 bytes "
                                      "each); beyond it the least recently used keys go, as beyond the key limit")
    terminated_accounts_file: str | None = None
    phi_workstations_file: str | None = None
    personal_mail_domains_file: str | None = Field(
        default=None, description="consumer e-mail domains, one a line (default: the list sentinel ships)")
    disabled_rules: list[str] = []


class NotifySettings(Strict):
    enabled: bool = True
    poll_interval_ms: int = Field(default=200, gt=0)
    retry_base_seconds: float = Field(default=2.0, gt=0, description="first retry delay; doubles per attempt")
    retry_max_seconds: float = Field(default=300.0, gt=0, description="cap of the retry delay")
    retry_jitter: float = Field(default=0.25, ge=0, le=1, description="random spread of each delay, as a fraction")
    max_attempts: int = Field(default=5, ge=1, description="failures before a receiver's fallback takes over")
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    delivery_threads: int = Field(default=4, ge=1, le=32, description="receivers served in parallel")
    followup_interval_seconds: float = Field(default=5.0, gt=0, description="how often escalations are checked")
    patient_names_file: str | None = Field(default=None, description="known patient names, masked in messages")
    redact_patterns: list[str] = Field(default=[], description="extra regular expressions to mask")
    evidence_command: str = "sentinel alerts show {alert_id}"


class LoggingSettings(Strict):
    """sentinel's own logs (stderr → journal) and its hash-chained audit trail."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    audit_file: str = Field(default="audit.jsonl", description="audit trail, relative to state_dir")


class SentinelConfig(Strict):
    state_dir: str = "/var/lib/sentinel"
    host_name: str | None = Field(default=None, description="defaults to the machine's host name")
    timezone: str = Field(default="UTC", description="zone for syslog timestamps that carry none")
    collectors_dir: str = "../collectors"
    rules_dir: str = "../rules"
    alerts_dir: str = "../alerts"
    shipped_defaults: bool = Field(
        default=False, description="the collectors, rules and alerts shipped in the package are the base that the "
        "*_dir folders override (same collector name, rule id or alerts file) and extend")
    storage: StorageSettings = StorageSettings()
    pipeline: PipelineSettings = PipelineSettings()
    sources: list[SourceSettings] = []
    detection: DetectionSettings = DetectionSettings()
    notify: NotifySettings = NotifySettings()
    metrics: MetricsSettings = MetricsSettings()
    api: ApiSettings = ApiSettings()
    logging: LoggingSettings = LoggingSettings()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; expected an IANA name such as UTC or America/Chicago") from None
        return value


class ConfigFile(BaseModel):
    """Where a configuration was read: relative paths in it resolve against its folder, errors name it."""

    model_config = ConfigDict(frozen=True)

    path: Path

    @property
    def base(self) -> Path:
        return self.path.parent

    def resolve(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base / p).resolve()


class RuleSources(BaseModel):
    """What detection reads of a configuration: the rule folders (lowest layer first), its settings and zone."""

    model_config = ConfigDict(frozen=True)

    dirs: tuple[Path, ...]
    detection: DetectionSettings
    timezone: str
    origin: ConfigFile  # list files resolve against it; errors in detection.* name it


class AlertFolders(BaseModel):
    """What routing reads of a configuration: the alert folders (lowest layer first) and the zone of its times."""

    model_config = ConfigDict(frozen=True)

    dirs: tuple[Path, ...]
    operator_dir: Path  # the operator's folder: where a file no layer has is expected
    timezone: str

    def file(self, name: str) -> Path:
        """The top-most layer's ``name`` (routes.yaml, receivers.yaml): an operator's file replaces the shipped."""
        for folder in reversed(self.dirs):
            if (folder / name).is_file():
                return folder / name
        return self.operator_dir / name


class LoadedConfig(BaseModel):
    """The validated config plus where it came from, with its relative paths resolved."""

    model_config = ConfigDict(frozen=True)

    config: SentinelConfig
    path: Path

    @property
    def origin(self) -> ConfigFile:
        return ConfigFile(path=self.path)

    @property
    def base(self) -> Path:
        return self.path.parent

    def resolve(self, value: str) -> Path:
        return self.origin.resolve(value)

    @property
    def rule_sources(self) -> RuleSources:
        return RuleSources(dirs=self.rule_dirs, detection=self.config.detection, timezone=self.config.timezone,
                           origin=self.origin)

    @property
    def alert_folders(self) -> AlertFolders:
        return AlertFolders(dirs=self.alert_dirs, operator_dir=self.alerts_dir, timezone=self.config.timezone)

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.config.state_dir)

    @property
    def collectors_dir(self) -> Path:
        return self.resolve(self.config.collectors_dir)

    @property
    def rules_dir(self) -> Path:
        return self.resolve(self.config.rules_dir)

    @property
    def alerts_dir(self) -> Path:
        return self.resolve(self.config.alerts_dir)

    def _layers(self, shipped: str, operator: Path) -> tuple[Path, ...]:
        """Where definitions are read, lowest first: the shipped folder (if enabled), then the operator's."""
        if not self.config.shipped_defaults:
            return (operator,)
        base = shipped_path(shipped)
        return (base,) if operator == base.resolve() else (base, operator)

    @property
    def collector_dirs(self) -> tuple[Path, ...]:
        return self._layers("collectors", self.collectors_dir)

    @property
    def rule_dirs(self) -> tuple[Path, ...]:
        return self._layers("rules", self.rules_dir)

    @property
    def alert_dirs(self) -> tuple[Path, ...]:
        return self._layers("alerts", self.alerts_dir)

    def alerts_file(self, name: str) -> Path:
        """The top-most layer's ``name`` (routes.yaml, receivers.yaml): an operator's file replaces the shipped."""
        return self.alert_folders.file(name)

    def state_path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.state_dir / p
