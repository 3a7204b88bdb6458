"""sdgate's inference worker: runs diffusers pipelines behind a small HTTP+JSON protocol (see README.md)."""

__version__ = "0.1.0"
