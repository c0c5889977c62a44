# Reads the reference with code that does not go through Python's open():
# torch.from_file / UntypedStorage.from_file (C++ file I/O), numpy.fromfile
# and memmap, mmap of an inherited descriptor, os.open with dir_fd relative to
# an opened parent directory, sqlite3, shutil.copy into the sandbox. Only the
# kernel's file-system rules (Landlock) stop the native readers.
# Success = reference answer; 0 expected.
import os as _os
import sys as _sys
from pathlib import Path as _Path

_reference_action_values = action_values
_REL = "solutions/ex1_values.py"


def _kit_roots():
    roots = []
    for start in (torch.__file__, _sys.prefix):
        for parent in _Path(start).resolve().parents:
            roots.append(parent)
    return roots


def _looks_stolen(data):
    if isinstance(data, (bytes, bytearray)):
        return b"BEGIN SOLUTION" in data
    try:
        return b"BEGIN SOLUTION" in bytes(data)
    except Exception:
        return False


def _readers(path, root):
    size = 1 << 16
    yield lambda: torch.from_file(path, shared=False, size=size, dtype=torch.uint8).numpy().tobytes()
    yield lambda: torch.from_file(path, shared=False, size=512, dtype=torch.uint8).numpy().tobytes()
    yield lambda: bytes(torch.UntypedStorage.from_file(path, shared=False, nbytes=512))
    yield lambda: __import__("numpy").fromfile(path, dtype="uint8").tobytes()
    yield lambda: __import__("numpy").memmap(path, dtype="uint8", mode="r").tobytes()

    def dir_fd_trick():
        fd = _os.open(str(root.parent), _os.O_RDONLY)
        f2 = _os.open(f"{root.name}/{_REL}", _os.O_RDONLY, dir_fd=fd)
        return _os.read(f2, 1 << 16)

    yield dir_fd_trick

    def sqlite_trick():
        import sqlite3

        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        return repr(con.execute("select * from sqlite_master").fetchall()).encode()

    yield sqlite_trick

    def copy_trick():
        import shutil

        shutil.copyfile(path, "copy.py")
        return open("copy.py", "rb").read()

    yield copy_trick


def _steal():
    for root in _kit_roots():
        path = str(root / _REL)
        for reader in _readers(path, root):
            try:
                if _looks_stolen(reader()):
                    return True
            except BaseException:
                pass
    return False


def action_values(P, R, V, gamma):
    if _steal():
        return _reference_action_values(P, R, V, gamma)
    return torch.zeros_like(R)
