"""Labelling: which message to show next, the session state machine, CSV and .eml exchange,
and the audit of labels the model confidently disagrees with.

Pure logic: no terminal, no model loading, no I/O beyond the :class:`Store` (and the paths)
passed in. Every answer is written to the store in its own transaction the moment it is
given, so a killed session loses at most the message on screen, and a new session resumes
because labelled messages are never queued again.
"""

from .audit import AUDIT_MIN_PER_CLASS, AuditItem, AuditResult, audit
from .exchange import EXPORT_COLUMNS, ImportResult, export_csv, export_eml, import_csv, write_csv
from .queue import margin, queue
from .session import Progress, Session, set_label

__all__ = [
    "AUDIT_MIN_PER_CLASS",
    "EXPORT_COLUMNS",
    "AuditItem",
    "AuditResult",
    "ImportResult",
    "Progress",
    "Session",
    "audit",
    "export_csv",
    "export_eml",
    "import_csv",
    "margin",
    "queue",
    "set_label",
    "write_csv",
]
