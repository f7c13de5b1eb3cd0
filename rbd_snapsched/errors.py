"""Errors that carry the errno a mgr command answers with."""

from __future__ import annotations

import errno


class SnapSchedError(Exception):
    """Base error: ``str(e)`` is the operator-facing message, ``errno`` the positive errno."""

    errno: int = errno.EINVAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def reply(self) -> str:
        """The command's error text, as the mgr sends it on."""
        return self.message


class InvalidArgument(SnapSchedError):
    """Bad user input: a level spec, interval or start time that does not parse or validate."""

    errno = errno.EINVAL


class NotAuthorized(SnapSchedError):
    errno = errno.EACCES

    def reply(self) -> str:
        # ceph-mgr appends its own "access denied: does your client key have mgr caps? ..."
        # to an EACCES reply's text, with no separator: end ours with a newline.
        return self.message + "\n"


class NotFound(SnapSchedError):
    """What the command names does not exist (e.g. resuming a level that is not paused)."""

    errno = errno.ENOENT


class NotReady(SnapSchedError):
    """The module is starting or recovering from a blocklisting: try again."""

    errno = errno.EAGAIN


class StorageError(SnapSchedError):
    """A write the cluster did not make (e.g. the mon refused a module option): nothing changed."""

    errno = errno.EIO


class ScheduleDecodeError(SnapSchedError):
    """A stored schedule record that cannot be decoded (logged and skipped, never fatal)."""

    errno = errno.EINVAL
