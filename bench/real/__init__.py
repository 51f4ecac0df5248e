"""Programs rebuilt from resolved public threads ("predicts one class", "loss does not move"), each naming its thread.

Importing this package registers every module in it as the "real" suite of the case registry; `standins` holds the
offline data that replace the threads' own datasets, with the same shapes and tasks.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
