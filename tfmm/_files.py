"""Files tfmm writes: atomic writes with the user's umask, output-path checks, scratch space.

Every file tfmm writes goes through `atomic_write_bytes` (a temp file in the target's
folder, then `os.replace`), so a reader never sees half a file. Temp names carry the
writer's process id (`.tfmm-tmp-<pid>-...`): a later run removes those whose process
is gone (a run killed with SIGKILL cannot clean up after itself). Scratch folders
(SavedModels, candidate files) live under one `tfmm-run-<pid>-*` folder per run in
the system temp dir, removed on success, on exceptions and on Ctrl-C.
"""

import contextlib
import os
import shutil
import tempfile

from tfmm.errors import ConfigError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_path",
    "publish_file",
    "run_scratch",
    "scratch_dir",
    "sweep_stale",
]

TMP_PREFIX = ".tfmm-tmp-"
RUN_PREFIX = "tfmm-run-"
_current_run = []  # the folder of the innermost `run_scratch` (a stack: runs may nest)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _owner_pid(name, prefix):
    """The pid encoded in a temp name `<prefix><pid>-...`, or None."""
    head = name[len(prefix):].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def sweep_stale(folder=None):
    """Remove temp files / folders left by tfmm runs whose process no longer exists.

    Args:
        folder: Where to look for `.tfmm-tmp-*` files; the system temp dir is always
            swept for `tfmm-run-*` folders too.

    Returns:
        The list of paths removed.

    Example:
        >>> removed = tfmm._files.sweep_stale(".")
    """
    removed = []
    places = [(tempfile.gettempdir(), RUN_PREFIX)]
    if folder is not None:
        places.append((os.fspath(folder), TMP_PREFIX))
    for place, prefix in places:
        try:
            names = os.listdir(place)
        except OSError:
            continue
        for name in names:
            pid = _owner_pid(name, prefix) if name.startswith(prefix) else None
            if pid is None or pid == os.getpid() or _alive(pid):
                continue
            path = os.path.join(place, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(path)
            removed.append(path)
    return removed


def _umask_mode(base=0o666):
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def publish_file(tmp, path):
    """Give `tmp` the user's umask permissions and rename it to `path` (atomic).

    Args:
        tmp: A finished temp file in the same folder as `path`.
        path: The destination.

    Returns:
        `path`.
    """
    os.chmod(tmp, _umask_mode())
    os.replace(tmp, path)
    return path


def temp_name(path):
    """A temp file path next to `path`, named after this process (see `sweep_stale`)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{TMP_PREFIX}{os.getpid()}-",
                               suffix="-" + os.path.basename(path))
    os.close(fd)
    return tmp


def atomic_write_bytes(path, data):
    """Write `data` to `path` atomically: a temp file in the same folder, then rename.

    The file gets the permissions of the user's umask (0644 typically), as a plain
    `open()` would give it.

    Args:
        path: Destination file path.
        data: The bytes to write.

    Returns:
        The path written, as a string.

    Raises:
        OSError: The folder is not writable. No partial file is left behind.

    Example:
        >>> import tempfile, os
        >>> p = tfmm._files.atomic_write_bytes(os.path.join(tempfile.mkdtemp(), "a.bin"), b"hi")
    """
    path = os.fspath(path)
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        return publish_file(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    """Write UTF-8 `text` to `path` atomically (see `atomic_write_bytes`).

    Args:
        path: Destination file path.
        text: The text to write.

    Returns:
        The path written, as a string.

    Example:
        >>> import tempfile, os
        >>> p = tfmm._files.atomic_write_text(os.path.join(tempfile.mkdtemp(), "a.txt"), "hi")
    """
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_output_path(path, *, argname="out", suffixes=None, folder=False):
    """Fail fast, before any long work, on an output path that cannot be written.

    Args:
        path: The file (or, with `folder=True`, the folder) a run will write.
        argname: The argument or flag name used in messages (`"--out"`, `"path"`).
        suffixes: Optional allowed endings, e.g. `(".tflite",)`.
        folder: The output is a folder (a report): it may exist already.

    Returns:
        The absolute path.

    Raises:
        ConfigError: The path is empty, is an existing folder (for a file), has the
            wrong ending, its parent folder does not exist or is not a folder, or a
            file cannot be created there. The message names the path and the fix.

    Example:
        >>> p = tfmm._files.check_output_path("model.tflite", suffixes=(".tflite",))
    """
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(f"`{argname}` must be a file path. Received: {argname}={path!r}")
    full = os.path.abspath(path)
    if not folder and os.path.isdir(full):
        raise ConfigError(f"{argname} {path!r} is a folder; pass a file path inside it, e.g. "
                          f"{os.path.join(path, 'model' + (suffixes[0] if suffixes else ''))!r}.")
    if suffixes and not full.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise ConfigError(
            f"`{argname}` must end in {' or '.join(suffixes)}. Received: {argname}={path!r}"
        )
    if folder:
        if os.path.exists(full) and not os.path.isdir(full):
            raise ConfigError(f"{argname} {path!r} is a file, but a folder is written there: pick another path.")
        parent = full if os.path.isdir(full) else os.path.dirname(full)
    else:
        parent = os.path.dirname(full)
    if not os.path.isdir(parent):
        what = "is not a folder" if os.path.exists(parent) else "does not exist"
        raise ConfigError(f"{argname} {path!r}: the folder {parent!r} {what}. Create it first or pick another path.")
    try:  # os.access says yes to root on read-only mounts: try for real
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f"{TMP_PREFIX}{os.getpid()}-probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise ConfigError(
            f"{argname} {path!r}: cannot write in {parent!r} ({e.strerror}). Pick a writable folder."
        ) from None
    sweep_stale(parent)
    return full


@contextlib.contextmanager
def run_scratch():
    """One scratch folder for a whole run, removed on exit, errors and Ctrl-C.

    Stale folders of killed runs are swept first. Inside the block, `scratch_dir()`
    hands out sub-folders of it.

    Yields:
        The folder's path.

    Example:
        >>> with tfmm._files.run_scratch() as folder:
        ...     sub = tfmm._files.scratch_dir("savedmodel")
    """
    sweep_stale()
    with tempfile.TemporaryDirectory(prefix=f"{RUN_PREFIX}{os.getpid()}-") as folder:
        _current_run.append(folder)
        try:
            yield folder
        finally:
            _current_run.pop()


@contextlib.contextmanager
def scratch_dir(name="scratch"):
    """A fresh sub-folder of the current run's scratch folder (or a run of its own).

    Args:
        name: A readable prefix of the sub-folder.

    Yields:
        The sub-folder's path; it is removed when the block ends.

    Example:
        >>> with tfmm._files.scratch_dir("savedmodel") as folder:
        ...     pass
    """
    if not _current_run:
        with run_scratch():
            with scratch_dir(name) as folder:
                yield folder
        return
    folder = tempfile.mkdtemp(dir=_current_run[-1], prefix=f"{name}-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
