"""The one exception of bad input: the command line prints it as one line and exits with 2."""

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A configuration, file or command-line value is invalid.

    The message is one line that says what was expected and what was given.
    """
