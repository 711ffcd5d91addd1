"""The request layer every front door and both engines share: docker's text syntax read once.

::

    cli/ magics/ dock   -->  commands.runflags     -v, --mount, --restart, -m, --device
    (and next: server/,      commands.dockerignore  .dockerignore, the context walk and tar
     the Docker API)         commands.credentials   ~/.docker/config.json, login/logout keys
                                     |
                                     v
                    engine/ (bundled)      docker/ (Docker Engine API)

Modules here import only :mod:`ipydock.errors` and :mod:`ipydock.models`: both engines use them
and neither backend parses docker's text syntax itself.
"""
