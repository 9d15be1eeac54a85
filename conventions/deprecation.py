"""Old import paths of the fakes' machinery, kept for one release with a DeprecationWarning.

The fakes moved into the top-level `fakes` package (fakes/__init__.py). An old module
path that held machinery only is an alias: importing it warns once and hands back the
very module at the new path (so state and `mock.patch` targets are shared).
"""

import importlib
import sys
import warnings


def warn_moved(old, new, stacklevel=3):
    warnings.warn(
        f"{old} has moved to {new}; import it from there ({old} goes in the next release)",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def alias_module(old, new, submodules=(), package=None):
    """Make module `old` the module `new`, warning once; and each `old.<name>` of
    `submodules` the module `<package>.<name>` (`package` defaults to `new`).

    Call it from the old module's body: importlib then binds the new module wherever the
    old name is imported, and finds the old submodules' names already taken.
    """
    warn_moved(old, new, stacklevel=4)
    sys.modules[old] = importlib.import_module(new)
    for name in submodules:
        sys.modules[f"{old}.{name}"] = importlib.import_module(f"{package or new}.{name}")


def moved_attributes(old, names):
    """A module `__getattr__` for names that moved out of a module that stays: {name: new module}."""

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warn_moved(f"{old}.{name}", f"{names[name]}.{name}")
        return getattr(importlib.import_module(names[name]), name)

    return __getattr__
