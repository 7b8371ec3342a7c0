"""Typed errors. Each message says what went wrong, where (file, page) and, when there is one, how to fix it."""

from __future__ import annotations


class DocvlmError(Exception):
    """Base of every error docvlm raises on purpose.

    `code` is a short stable identifier recorded in results (`ErrorItem.code`).
    """

    code = "error"

    def __init__(self, message: str, *, path: str | None = None, page: int | None = None) -> None:
        self.message = message
        self.path = path
        self.page = page
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}"
            if self.page is not None:
                where += f" (page {self.page + 1})"
            where += ": "
        elif self.page is not None:
            where = f"page {self.page + 1}: "
        return where + self.message


class UsageError(DocvlmError):
    """A bad option or argument (exit code 2)."""

    code = "usage"


class MissingExtraError(DocvlmError):
    """An optional dependency is not installed; the message names the pip command."""

    code = "missing_extra"

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'docvlm[{extra}]'")


class InputError(DocvlmError):
    """An input file cannot be read as a document (corrupt, encrypted, empty, unsupported, ...)."""

    code = "input"


class UnsupportedInputError(InputError):
    code = "unsupported"


class EncryptedInputError(InputError):
    code = "encrypted"


class EmptyInputError(InputError):
    code = "empty"


class CorruptInputError(InputError):
    code = "corrupt"


class PageTooLargeError(InputError):
    """A page would exceed the pixel cap when rasterized."""

    code = "page_too_large"


class EngineError(DocvlmError):
    """The engine failed on a page or tile."""

    code = "engine"


class ModelLoadError(EngineError):
    code = "model_load"


class ParseError(DocvlmError):
    """Model output that could not be parsed into boxes (recorded on the page, never raised to the user)."""

    code = "parse"


class OutputError(DocvlmError):
    """An output file cannot be produced from this result (source gone or changed, page size mismatch, ...)."""

    code = "output"
