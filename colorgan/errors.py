"""The one exception type the command-line tools turn into a one-line error message."""


class ColorganError(Exception):
    """A problem the user can fix (bad flag, bad path, bad data): shown as one line, no traceback."""


class ImageTooLarge(ColorganError):
    """An image over a pixel limit, refused from its header before its pixels are decoded."""


def too_many_pixels(what, width: int, height: int, limit: int) -> ImageTooLarge:
    """The one wording of every pixel limit (files, uploads, arrays)."""
    return ImageTooLarge(f"{what}: {width}x{height} is {width * height:,} pixels, over the limit of {limit:,}")
