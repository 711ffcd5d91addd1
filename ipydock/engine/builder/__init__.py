"""The Dockerfile builder: a Dockerfile and a build context -> a layered image, as Docker's
classic builder makes it (one image per step, parent-linked; that chain is the cache).

::

    context.py   dir / tar / URL / stdin --(.dockerignore: ignore.py)--> BuildContext(size,
                 view(): a dir is read in place (rootview.ContextView over one walk))
    parser.py    text --BuildKit's parser (dockerfile pkg)--> Node(cmd, line, flags, value)
    convert.py   Node --> typed instructions (instructions.py), grouped into Stage(FROM, [...])
    pipeline.py  for each stage up to --target, for each instruction:
                    dispatch.py  ENV LABEL ARG CMD ... (shell.py expands $VARS)  --> Step
                    runstep.py   RUN in a container on the parent's layers      --> Step + layer
                    copyadd.py   COPY/ADD/WORKDIR written into a staging dir     --> Step + layer
                                 (filework.py: digests and copies, a few threads)
                    commit.py    cache.py hit? else layer + commit_image(parent) --> state
                 tag the last image; BuildEvents to the progress callback all along

Nothing here prints: progress goes out as :class:`ipydock.models.BuildEvent`, failures as
:class:`ipydock.errors.BuildError` subclasses carrying the Dockerfile line.
"""

from ipydock.engine.builder.context import BuildContext, open_context
from ipydock.engine.builder.convert import parse_dockerfile
from ipydock.engine.builder.instructions import Dockerfile
from ipydock.engine.builder.pipeline import Progress, build
from ipydock.engine.builder.state import BuildOptions

__all__ = [
    "BuildContext",
    "BuildOptions",
    "Dockerfile",
    "Progress",
    "build",
    "open_context",
    "parse_dockerfile",
]
