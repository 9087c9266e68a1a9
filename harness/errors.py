"""Errors a user can act on. Each message is one paragraph: what is wrong, where, and the fix."""


class HarnessError(Exception):
    """Base class; the CLI prints the message and exits with status 2, without a traceback."""


class SuiteError(HarnessError):
    """A suite file is malformed: the message names the file, line and field."""


class UnknownNameError(HarnessError):
    """A dataset, retriever or metric name that the harness does not know."""


class DataUnavailableError(HarnessError):
    """Data or model files are not on disk and cannot be downloaded."""


class DataError(HarnessError):
    """The data itself is invalid: duplicate ids, empty texts, judgments naming unknown ids."""


class FormatError(HarnessError):
    """A run or judgment file does not parse: the message names the file and line."""


class ProtocolMismatchError(HarnessError):
    """Results measured under different protocols were about to be compared."""


class MissingDependencyError(HarnessError):
    """An optional package is not installed: the message names it and the pip extra that brings it."""


class CorruptFileError(HarnessError):
    """A stored file (a cache entry, a result) is cut short, overwritten, or lacks the checksums that
    would show it whole. Caches are rebuilt; a damaged result is redone by `harness run` and refused
    by the commands that read results."""

    def __init__(self, path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path} {reason}")

    def __reduce__(self):  # rebuilt from both arguments: it travels back from a worker process
        return type(self), (self.path, self.reason)


class NonFiniteScoreError(HarnessError):
    """A retriever gave a score that is not a finite number (NaN, infinity); nothing is stored."""


class ParameterError(HarnessError):
    """A value outside its valid range (a command option, a retriever parameter): the message names
    the field and the range. ``param`` names the retriever parameter, where there is one, so that
    the caller can point at its line in the suite file."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param

    def __reduce__(self):
        return type(self), (str(self), self.param)
