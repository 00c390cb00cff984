"""Runs a command until standard input closes, then stops it and all it started.

Usage: python guard_runner.py [--cleanup PATH]... -- CMD ARGS...

CMD runs in a process group (and session) of its own, with its standard
input on /dev/null and its standard output and error both on our standard
error. Once it is started, this runner prints "started" on standard output,
then waits until its own standard input closes or CMD exits. Then it stops
the whole process group: SIGTERM, and SIGKILL to whatever is left 3 seconds
later. Last, it removes each PATH given with --cleanup (a directory with all
it holds, or a file), whether CMD started or not.

The Rust test process holds the write end of our stdin; when it exits, for
whatever reason, the kernel closes the pipe and the server goes with it.
Interrupting the tests with Ctrl-C signals this runner too (it is in the
test process's group, CMD is not): the runner ignores SIGINT and stops CMD
once the test process is gone. SIGTERM makes it stop CMD at once.

Exit status: 0 when CMD was stopped by the runner, 2 on bad usage, 3 when
CMD could not be started, else CMD's own when it exited by itself (1 when
it was killed by a signal).
"""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

# How long the group has to leave after SIGTERM, then after SIGKILL.
TERM_GRACE = 3.0
KILL_GRACE = 2.0


def say(*args, file=sys.stderr):
    """Prints, ignoring a reader that is gone (the test process exited)."""
    try:
        print(*args, file=file, flush=True)
    except (OSError, ValueError):
        pass


def parse(argv):
    cleanup = []
    args = list(argv)
    while args and args[0] != "--":
        if args[0] == "--cleanup" and len(args) >= 2:
            cleanup.append(args[1])
            args = args[2:]
        else:
            return None, None
    if len(args) < 2:
        return None, None
    return cleanup, args[1:]


def remove(paths):
    for path in paths:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            say(f"guard: cannot remove {path}: {e}")


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop_group(child):
    """SIGTERM to the whole group, SIGKILL to what is left after TERM_GRACE."""
    pgid = child.pid  # A session leader's group id is its process id.
    for sig, grace in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, KILL_GRACE)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            child.poll()  # Reap the leader, whose zombie still counts.
            if not group_alive(pgid):
                return
            time.sleep(0.05)
    say(f"guard: process group {pgid} still there after SIGKILL")


def main():
    cleanup, cmd = parse(sys.argv[1:])
    if cmd is None:
        say(__doc__.split("\n\n")[1])
        return 2

    done = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: done.set())

    try:
        child = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr.fileno(),
            stderr=sys.stderr.fileno(),
            start_new_session=True,
        )
    except OSError as e:
        say(f"guard: cannot start {cmd[0]}: {e}")
        remove(cleanup)
        return 3

    def watch_stdin():
        # Unbuffered reads: a daemon thread blocked in a buffered read would
        # hold the buffer's lock when the interpreter shuts down.
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        done.set()

    def watch_child():
        child.wait()
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    threading.Thread(target=watch_child, daemon=True).start()
    say("started", file=sys.stdout)

    while not done.wait(0.5):
        pass
    exited = child.poll()
    if exited is not None:
        say(f"guard: {cmd[0]} exited by itself with status {exited}")
    stop_group(child)
    remove(cleanup)
    if exited is None:
        return 0
    return exited if exited > 0 else 1


if __name__ == "__main__":
    status = main()
    # Leave at once: the watcher threads may still be blocked in a read or a
    # wait, and the interpreter's shutdown would wait on them or fail.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
