"""The worker process: ``python -m shipping_service consume``. (No ``__init__.py``: Python runs a
folder with a ``__main__.py`` as a package without one.)"""

import sys

from shipping_service.service import SERVICE

if __name__ == "__main__":
    sys.exit(SERVICE.main())
