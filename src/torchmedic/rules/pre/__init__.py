"""Rules that read the signals of `diagnose()` (seen by: pre)."""
