"""Renderers read a Report and present it; they never compute anything new."""
