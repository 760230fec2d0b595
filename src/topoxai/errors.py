"""Errors a user can fix, and how stages report them."""

import errno
import sys
from collections.abc import Callable

# A full disk or quota names no file, yet it is the user's to fix, not a bug.
_USER_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


class UserError(Exception):
    """A problem in the user's params, data or files; reported as one line, no traceback."""


class DataError(UserError):
    """A CSV, a processed split or a preprocessing spec that the pipeline cannot use."""


def run_main(main: Callable[[], None]) -> None:
    """Run a stage's main(); a UserError or a file's OSError becomes one line on stderr, exit 1."""
    try:
        main()
    except UserError as err:
        _fail(err)
    except OSError as err:
        # Only an OSError that names a path (an output folder that cannot be written, an
        # input that vanished) is the user's to fix. Others, such as a shared library that
        # fails to load during a lazy import, are a broken install or a bug: keep the traceback.
        if err.filename is None and err.errno not in _USER_ERRNOS:
            raise
        _fail(err)


def _fail(err: Exception) -> None:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(1)


def describe_bad_answer(err: Exception) -> str:
    """One line for an http.client.HTTPException: an answer it cannot parse, maybe quoted raw."""
    return f"the answer is not valid HTTP ({type(err).__name__}: {str(err)[:80]!r})"
