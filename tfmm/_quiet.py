"""Keep TensorFlow's native (C++) log lines out of the user's terminal.

TensorFlow and the TFLite converter write to file descriptor 2 from C++, where
Python's logging and `warnings` cannot reach. `native_stderr_captured` points fd 2
at a temp file for the duration of a block and replays what it caught if the
block fails, so errors keep their context.
"""

import contextlib
import os
import sys
import tempfile

__all__ = ["native_stderr_captured"]


@contextlib.contextmanager
def native_stderr_captured(enabled=True):
    """Capture fd 2 during the block; replay it only if the block raises.

    Args:
        enabled: When False, do nothing (for `--verbose`).

    Example:
        >>> with native_stderr_captured():
        ...     pass
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
