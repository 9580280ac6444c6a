"""Errors a user can fix. Entry points print their message in one line and exit non-zero."""


class UserError(Exception):
    """Bad input (a config value, a missing or corrupt data file): the message says what and how to fix it."""
