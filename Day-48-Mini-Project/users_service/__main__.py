"""``python -m users_service consume | relay | promote EMAIL``: the worker processes and the admin command."""

import sys

from users_service.service import SERVICE

main = SERVICE.main

if __name__ == "__main__":
    sys.exit(main())
