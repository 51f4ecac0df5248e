"""Integrations of the training monitor with training frameworks (each behind its optional extra)."""
