"""The worker processes: ``python -m orders_service consume`` and ``python -m orders_service relay``."""

import sys

from orders_service.service import SERVICE

main = SERVICE.main

if __name__ == "__main__":
    sys.exit(main())
