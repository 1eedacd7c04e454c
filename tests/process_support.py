"""Start and stop the server processes of the tests, whatever the caller's signal setup.

A shell starts a background job without job control with SIGINT ignored, and
child processes inherit that. Python then never raises KeyboardInterrupt, so
a server stopped with SIGINT would keep running. The tests start servers
with the default SIGINT action, and kill a server that does not stop in time.
"""

import signal
import subprocess


def default_sigint() -> None:
    """Restore the default SIGINT action; for ``Popen(preexec_fn=...)``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(process: subprocess.Popen, timeout: float = 10) -> int:
    """Stop ``process`` with SIGINT and return its exit status; kill it if it outlives ``timeout`` seconds."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
