"""Run an unmodified training script as `__main__` up to its first optimizer step, with a `Recorder` watching.

At that step `at_step` is called (the step has not happened yet). It returns None to end the script there, before
it trains, or an action to run once the step is over, at the script's next module call (`--then-train` starts
the live monitor that way). The recorder is removed in every case, also when the script raises.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from torchmedic.capture.recorder import Recorder


class _EndScript(BaseException):
    """Raised from the step hook to end the script before its first step; BaseException so that the script's own
    `except Exception` blocks let it through."""


@dataclass
class ScriptEnd:
    """How the script ended: stopped at its first step, or it ran out (`namespace`, its globals), exited (`status`)
    or raised (`error`) without ever stepping, or it went on training after the step (`continued`)."""

    stopped: bool = False
    continued: bool = False
    namespace: dict[str, Any] | None = None
    status: Any = None
    error: BaseException | None = None
    backwards: int = 0  # backward() calls seen before the first step (or in the whole run, if it never stepped)


def run_until_first_step(
    script: Path,
    argv: list[str],
    at_step: Callable[[Recorder, torch.optim.Optimizer], Callable[[], None] | None],
) -> ScriptEnd:
    """Run `script` with `argv` until its first optimizer step and call `at_step` there (see the module doc)."""
    end = ScriptEnd()

    def on_step(optimizer: torch.optim.Optimizer) -> None:
        then = at_step(recorder, optimizer)
        recorder.forget()
        if then is None:
            end.stopped = True
            raise _EndScript
        end.continued = True

        def go_on() -> None:
            recorder.uninstall()
            then()

        recorder.later(go_on)

    recorder = Recorder(on_step)
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script.resolve().parent))
    recorder.install()
    try:
        end.namespace = runpy.run_path(str(script), run_name="__main__")
    except _EndScript:
        pass
    except SystemExit as exc:
        end.status = exc.code
    except Exception as exc:
        end.error = exc
    finally:
        recorder.uninstall()
        recorder.forget()
        end.backwards = recorder.backwards
        sys.argv, sys.path[:] = saved_argv, saved_path
    return end
