"""`python -m mcp_bastion.cli`: the same as the `mcp-bastion` command."""

import sys

from . import main

sys.exit(main())
