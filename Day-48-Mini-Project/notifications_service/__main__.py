"""The worker process: ``python -m notifications_service consume``."""

import sys

from notifications_service.service import SERVICE

main = SERVICE.main

if __name__ == "__main__":
    sys.exit(main())
