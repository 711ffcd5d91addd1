"""The IPython layer: ``%load_ext ipydock`` registers :class:`IPyDock`'s magics.

::

    line/cell ──> core.IPyDock (parse with the CLI's parser) ──> dispatch.run (one backend call)
                        │                                          │
                        └── errors.cell_errors (short messages) <──┴──> display.present (frames,
                                                                         widgets, text)
"""

from __future__ import annotations

import contextlib

from IPython.core.interactiveshell import InteractiveShell

from ipydock.magics.core import IPyDock
from ipydock.magics.errors import CellError

__all__ = ["CellError", "IPyDock", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(shell: InteractiveShell) -> None:
    shell.register_magics(IPyDock)


def unload_ipython_extension(shell: InteractiveShell) -> None:
    magics = shell.magics_manager.registry.pop("IPyDock", None)
    if magics is not None and magics in shell.configurables:
        shell.configurables.remove(magics)
    if magics is not None:
        magics.close()
        with contextlib.suppress(ValueError):
            shell.events.unregister("post_run_cell", magics.show_accounts)
    for kind in ("line", "cell"):
        table = shell.magics_manager.magics[kind]
        for name in [n for n, fn in table.items() if getattr(fn, "__self__", None) is magics]:
            del table[name]
