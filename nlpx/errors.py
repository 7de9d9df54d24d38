"""Errors a user can make. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input from the user (config, paths, data): shown as one clear line, exit code 2.

    Internal bugs must NOT use this class, so that they keep their traceback.
    """
