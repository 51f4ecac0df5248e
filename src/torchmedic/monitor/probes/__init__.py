"""What the training monitor measures, one probe per file (see `base.Probe` for the events they answer)."""
