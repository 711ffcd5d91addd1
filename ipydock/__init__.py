"""ipydock: Docker-like images, containers, networks and volumes from a notebook.

``%load_ext ipydock`` (coming with the notebook layer) loads the magics; ``ipydock …`` is the CLI.
The bundled engine (:mod:`ipydock.engine`) needs no daemon.
"""

__version__ = "0.1.0"
