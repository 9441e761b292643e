"""A failure as one line: what the job records as an attempt's error and `status` shows."""

import os


def said(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"


def one_line_summary(e: BaseException) -> str:
    """`Type: message` in one line, and the cause a wrapper hides: datasets' DatasetGenerationError says only "An
    error occurred while generating the dataset", its cause which row failed, and the raising frame which file."""
    cause, inner, seen = e, e, {id(e)}
    # Explicit causes all the way; an implicit context only past an exception that says nothing itself.
    while (nxt := cause.__cause__ or (None if cause.__suppress_context__ or str(cause).strip()
                                      else cause.__context__)) is not None and id(nxt) not in seen:
        cause = nxt
        seen.add(id(cause))
        if str(cause).strip():
            inner = cause
    if inner is e:
        return said(e)
    file = _file_of(inner)
    reading = f" (reading {file})" if file and file not in str(inner) else ""
    return f"{said(e)}; cause: {said(inner)}{reading}"


def _file_of(e: BaseException) -> str | None:
    """The file a loader was reading when it raised: datasets' builders name it only in a log line, while the frame
    that raised still holds it as `file`."""
    frames = []
    tb = e.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        value = frame.f_locals.get("file")
        if isinstance(value, str | os.PathLike):
            return os.fspath(value)
    return None
