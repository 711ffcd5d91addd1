import sys

from ipydock.cli import main

sys.exit(main())
