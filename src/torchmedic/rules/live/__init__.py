"""Rules that read the training monitor's signals (seen by: live)."""
