"""One exception type for every user-facing problem: the CLI prints its message on one line and exits 2."""


def one_line(exc: BaseException) -> str:
    """'Type: message', first line only: how a failed job's reason is stored and shown."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


class MlffbenchError(Exception):
    """A problem with the user's input (file, key, value) or environment, stated in one line."""


class DataError(MlffbenchError):
    """A data file or frame is unusable; the message names the file and what is wrong."""


class ConfigError(MlffbenchError):
    """A configuration file or key is wrong; the message names the file and the key."""
