"""The daemon's own audit trail: an append-only JSONL file whose records form a SHA-256 hash chain."""

from sentinel.audit.chain import AuditLog, AuditRecord, VerifyResult, verify
from sentinel.audit.manifest import Manifest, diff_manifests, manifest_of

__all__ = ["AuditLog", "AuditRecord", "Manifest", "VerifyResult", "diff_manifests", "manifest_of", "verify"]
