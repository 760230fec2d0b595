"""Errors a user can fix, and how stages report them."""

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem in the user's params, data or files; reported as one line, no traceback."""


def run_main(main: Callable[[], None]) -> None:
    """Run a stage's main(); a UserError or OSError becomes one line on stderr and exit 1."""
    try:
        main()
    except (UserError, OSError) as err:  # OSError: an output path that cannot be written, ...
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
