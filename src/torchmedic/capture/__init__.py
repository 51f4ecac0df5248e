"""Zero-code pre-flight: the model, optimizer, loader and loss of an unmodified training script, read at its first
optimizer step (`torchmedic diagnose train.py`)."""

from torchmedic.capture.captured import Captured, CaptureError, captured_setup
from torchmedic.capture.script import ScriptEnd, run_until_first_step

__all__ = ["CaptureError", "Captured", "ScriptEnd", "captured_setup", "run_until_first_step"]
