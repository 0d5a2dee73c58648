"""The raw-request corpus and its harness (see README.md)."""
