"""Reading input files and checking output folders safely; writing output files all or nothing.

Every failure here is a :class:`~damf.config.ConfigError` with one line that names the file
and what was wrong with it, so the command line can print it and exit with status 2.
"""

import json
import os
import tempfile
from pathlib import Path

from .errors import ConfigError

__all__ = ["MAX_JSON_BYTES", "loads", "read_json", "read_text", "check_out_dir", "write_atomically"]

#: Largest JSON input read (a bert-base vector file is about 30 MiB).
MAX_JSON_BYTES = 1 << 30


def read_text(path, what, *, limit=MAX_JSON_BYTES):
    """The UTF-8 text of ``path``; ``what`` names the file in errors ("config file")."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"{what} '{path}' is a directory, not a file")
        size = path.stat().st_size
        if size > limit:
            raise ConfigError(f"{what} '{path}' is {size / 2**20:.0f} MiB; at most {limit >> 20} MiB are read")
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {what} '{path}': {e.strerror or e}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} '{path}' is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") \
            from None


def loads(text, what):
    """Parse JSON ``text`` (from ``what``) into Python values."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{what} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:      # the decoder's own limit (about a thousand levels)
        raise ConfigError(f"{what} nests arrays or objects too deeply to be a damf file") from None


def read_json(path, what):
    """The parsed JSON of ``path``; ``what`` names the file in errors ("vector file")."""
    return loads(read_text(path, what), f"{what} '{Path(path)}'")


def check_out_dir(path, option="--out"):
    """Check that ``path`` can be (or already is) an output folder, before any work starts.

    Refuses the empty string, an existing file, a path below a file, and a folder (or the
    nearest existing parent of one still to be made) that this process cannot write.
    Returns ``Path(path)``.
    """
    text = str(path)
    if not text.strip():
        raise ConfigError(f"{option} must name a directory, not '{text}'")
    out = Path(text)
    probe = out
    while not probe.exists():
        if probe.is_symlink():
            raise ConfigError(f"{option} '{out}': '{probe}' is a broken symbolic link")
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        if probe == out:
            raise ConfigError(f"{option} must be a directory, not the file '{out}'")
        raise ConfigError(f"{option} '{out}' lies below the file '{probe}', which is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} '{out}' cannot be written: no write permission in '{probe}'")
    return out


def write_atomically(files):
    """Write ``{path: str or bytes}``: every file is replaced, or (on any error) none is.

    Each file goes to a temporary file beside its destination first (mode ``0o666`` minus the
    umask, as ``open`` would give); only when all are written are they renamed into place.
    A file system error (no space, no permission) is a :class:`ConfigError` naming the file.
    """
    mask = os.umask(0)
    os.umask(mask)
    temps = []
    path = None
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            temps.append((tmp, path))
            with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~mask)
        for tmp, path in temps:
            os.replace(tmp, path)
    except OSError as e:
        raise ConfigError(f"cannot write '{path}': {e.strerror or e}") from None
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
