"""supportcli: triage a small shop's support mailbox, locally."""

__version__ = "0.1.0"
