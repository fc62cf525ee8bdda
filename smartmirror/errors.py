"""The one shape of a failure the user sees: a stable machine-readable ``code`` and a sentence.

Every part that refuses an input raises a :class:`CodedError` subclass (a video that cannot be read, a dataset
folder that cannot be evaluated, a batch that cannot run, a REST session refusal), and every front end renders it
the same way: ``{"error": {"code": ..., "message": ...}}`` (:func:`error_object`) on stdout or in an HTTP body.
"""

from __future__ import annotations


def error_object(code: str, message: str) -> dict[str, dict[str, str]]:
    """The report's and the API's failure shape: ``{"error": {"code": ..., "message": ...}}``."""
    return {"error": {"code": str(code), "message": str(message)}}


class CodedError(Exception):
    """A refusal with a stable ``code`` (snake_case) and a message meant for the user."""

    #: The code used when none is given.
    code = "error"

    def __init__(self, code: str | None, message: str):
        super().__init__(message)
        self.code = code or type(self).code
        self.message = message

    def to_json(self) -> dict[str, dict[str, str]]:
        """This error as :func:`error_object`."""
        return error_object(self.code, self.message)
