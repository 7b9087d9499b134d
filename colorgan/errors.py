"""The one exception type the command-line tools turn into a one-line error message."""


class ColorganError(Exception):
    """A problem the user can fix (bad flag, bad path, bad data): shown as one line, no traceback."""


class ImageTooLarge(ColorganError):
    """An image over a pixel limit, refused from its header before its pixels are decoded."""
