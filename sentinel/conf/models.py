"""Typed model of ``config/sentinel.yaml``; unknown keys are rejected so typos surface."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SqliteSettings(Strict):
    path: str = "events.db"
    retention_days: float = Field(default=2190, gt=0, description="delete events older than this")
    max_size_mb: float = Field(default=10240, gt=0, description="delete oldest events beyond this size")
    retention_check_seconds: float = Field(default=300, gt=0)


class ElasticsearchSettings(Strict):
    hosts: list[str] = ["https://127.0.0.1:9200"]
    api_key: str | None = Field(default=None, description="${ENV} or file:/path, never the key itself")
    username: str | None = None
    password: str | None = Field(default=None, description="${ENV} or file:/path")
    ca_certs: str | None = None
    verify_certs: bool = True
    index_prefix: str = "sentinel"
    bulk_max_docs: int = Field(default=2000, gt=0)
    bulk_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    flush_interval_ms: int = Field(default=200, gt=0)
    concurrency: int = Field(default=2, ge=1, le=16)
    max_retries: int = Field(default=8, ge=0)
    spool_max_mb: float = Field(default=2048, gt=0)
    retention_days: int = Field(default=2190, gt=0, description="six years, HIPAA documentation retention")
    rollover_max_age_days: int = Field(default=30, gt=0)
    request_timeout: float = Field(default=30, gt=0)


class StorageSettings(Strict):
    backend: Literal["sqlite", "elasticsearch"] = "sqlite"
    sqlite: SqliteSettings = SqliteSettings()
    elasticsearch: ElasticsearchSettings = ElasticsearchSettings()


class PipelineSettings(Strict):
    batch_max_lines: int = Field(default=4096, gt=0)
    batch_max_wait_ms: int = Field(default=100, gt=0, le=10_000)
    poll_interval_ms: int = Field(default=250, gt=0)
    read_chunk_bytes: int = Field(default=1 << 20, ge=4096)
    max_line_bytes: int = Field(default=1 << 20, ge=256, description="longer lines are truncated and flagged")
    start_position: Literal["beginning", "end"] = Field(
        default="end", description="where to start in files never seen before, on first start"
    )
    max_open_files: int = Field(default=512, gt=0)
    use_watchdog: bool = True


class SourceSettings(Strict):
    collector: str = Field(description="name of a collector definition in collectors/")
    enabled: bool = True
    paths: list[str] | None = Field(default=None, description="overrides the collector's default paths")
    host_name: str | None = None
    start_position: Literal["beginning", "end"] | None = None


class MetricsSettings(Strict):
    enabled: bool = True
    listen: str = "127.0.0.1:9464"
    username: str | None = None
    password: str | None = Field(default=None, description="${ENV} or file:/path")
    tls_cert: str | None = None
    tls_key: str | None = None


class ApiSettings(Strict):
    enabled: bool = True
    listen: str = "127.0.0.1:9465"
    token_file: str = "api.token"


class DetectionSettings(Strict):
    enabled: bool = True
    late_event_allowance_seconds: float = Field(default=300, ge=0)
    max_keys_per_rule: int = Field(default=100_000, gt=0)
    terminated_accounts_file: str | None = None
    phi_workstations_file: str | None = None
    disabled_rules: list[str] = []


class NotifySettings(Strict):
    enabled: bool = True
    poll_interval_ms: int = Field(default=200, gt=0)


class LoggingSettings(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class SentinelConfig(Strict):
    state_dir: str = "/var/lib/sentinel"
    host_name: str | None = Field(default=None, description="defaults to the machine's host name")
    timezone: str = Field(default="UTC", description="zone for syslog timestamps that carry none")
    collectors_dir: str = "../collectors"
    rules_dir: str = "../rules"
    alerts_dir: str = "../alerts"
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
            raise ValueError(f"unknown time zone {value!r}; expected an IANA name such as UTC or America/Chicago") from None
        return value


class LoadedConfig(BaseModel):
    """The validated config plus where it came from, with its relative paths resolved."""

    model_config = ConfigDict(frozen=True)

    config: SentinelConfig
    path: Path

    @property
    def base(self) -> Path:
        return self.path.parent

    def resolve(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base / p).resolve()

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

    def state_path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.state_dir / p
