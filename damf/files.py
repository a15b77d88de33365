"""Writing output files all or nothing."""

import os
import tempfile

__all__ = ["write_atomically"]


def write_atomically(files):
    """Write ``{path: str or bytes}``: every file is replaced, or (on any error) none is.

    Each file goes to a temporary file beside its destination first (mode ``0o666`` minus the
    umask, as ``open`` would give); only when all are written are they renamed into place.
    """
    mask = os.umask(0)
    os.umask(mask)
    temps = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~mask)
            temps.append((tmp, path))
        for tmp, path in temps:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
