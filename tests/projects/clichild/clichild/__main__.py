import sys

from clichild.cli import main

sys.exit(main(sys.argv[1:]))
