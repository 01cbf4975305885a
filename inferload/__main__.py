import sys

from inferload.cli import main

sys.exit(main())
