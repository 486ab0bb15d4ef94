"""`python -m ielts_service ...` is `ielts-service ...`."""

import sys

from ielts_service.cli import main

sys.exit(main())
