"""Errors that carry a user-facing one-line message and a stable reason code."""


class UserError(Exception):
    """A mistake the user can fix (bad path, bad override, missing model): shown as one line, no traceback."""


class ModelLoadError(UserError):
    """A model file that is present but will not load in a stage's `setup()`: the run stops in one
    line naming the file (exit 2), in either engine, and the video is not committed."""


class StageError(Exception):
    """A failure on one item that becomes a reject row: `reason` is a stable code, `message` is for humans."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.message = message or reason


#: the reject reason a stage actor gives the items of a batch when a UserError (a missing model, a
#: bad key) stopped it: the driver turns the first such item into the run's one-line error
USER_ERROR_REASON = "user_error"
