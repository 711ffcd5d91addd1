"""ipydock: Docker-like images, containers, networks and volumes from a notebook.

``%load_ext ipydock`` loads the magics (:mod:`ipydock.magics`); ``ipydock …`` is the CLI.
The bundled engine (:mod:`ipydock.engine`) needs no daemon.
"""

__version__ = "0.1.0"


def load_ipython_extension(shell: object) -> None:
    """``%load_ext ipydock``; IPython is imported only here, so the engine and CLI stay light."""
    from ipydock.magics import load_ipython_extension as load

    load(shell)  # type: ignore[arg-type]


def unload_ipython_extension(shell: object) -> None:
    from ipydock.magics import unload_ipython_extension as unload

    unload(shell)  # type: ignore[arg-type]
