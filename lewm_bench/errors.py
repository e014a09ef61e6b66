"""Exceptions that the command line turns into a one-line message and a non-zero exit status."""


class LewmBenchError(Exception):
    """An error the user can fix; its message says what was wrong and what to run."""


class DatasetError(LewmBenchError, ValueError):
    """A dataset file that is missing, unreadable, incomplete, from a newer schema or for another env."""
