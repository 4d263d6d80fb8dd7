import sys

from chatroom.cli import main

sys.exit(main())
