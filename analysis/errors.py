"""The one error analysis raises for results it cannot read, so callers can show it without a traceback."""

from __future__ import annotations


class ResultsError(ValueError):
    """A results file or directory that is missing, malformed, or of a format version we do not read.

    The message always names the path, what was wrong, and what to do about it.
    """
