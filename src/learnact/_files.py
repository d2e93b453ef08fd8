"""Writing files safely (internal, standard library only): every file learnact writes goes
through :func:`write_atomic`.

- The data goes to a fresh temporary file in the target's folder (``mkstemp``: created with
  O_EXCL, so never a file or link planted there), then ``os.replace`` puts it at the path. A
  reader sees the old file or the new one, never half of one; a crash leaves no partial file.
- ``os.replace`` replaces a symbolic link at the path itself, never the file it points to: a
  link planted in a run directory cannot redirect learnact's writes outside it.
- The target's folder must not be a symbolic link (a planted ``models -> /elsewhere``).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike, data: bytes | str | Callable[[IO[bytes]], object]
                 ) -> Path:
    """Write ``data`` (bytes, text as UTF-8, or a function that writes to a binary file
    object, e.g. ``lambda f: torch.save(obj, f)``) to ``path`` atomically, without following
    links; the folder is created if missing. Returns the path."""
    p = Path(path)
    folder = p.parent
    if folder.is_symlink():
        raise ValueError(f"refusing to write {p}: its folder {folder} is a symbolic link "
                         f"(to {os.readlink(folder)}); learnact does not write through links")
    folder.mkdir(parents=True, exist_ok=True)
    if p.is_dir() and not p.is_symlink():
        raise IsADirectoryError(f"cannot write {p}: it is a folder")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                buf = io.BytesIO()
                data(buf)
                fh.write(buf.getvalue())
            else:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p
