import sys

from ipydock.launcher import main

sys.exit(main())
