"""The bundled engine: a plain Python library, no IPython, pandas or widgets.

::

    cli / magics ──> backends ──> engine.Store ──> store/  (blobs, layers, images, archives)
                                                 ──> runtime/ (later: containers)
"""

from ipydock.engine.store import Store, default_root

__all__ = ["Store", "default_root"]
