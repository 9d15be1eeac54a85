"""`python -m fakes.service`: run the sandbox service (fakes.service.app.main)."""

import logging
import sys

from fakes.service.app import main

if __name__ == "__main__":
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sys.exit(main())
