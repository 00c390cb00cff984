"""Runs a moto S3 server on 127.0.0.1 until standard input closes.

Usage: python moto_runner.py [PORT]

PORT defaults to 0: the server binds a free port itself (no window in which
another process could take it) and reports it on standard output as
"ready PORT" once it accepts connections.

The Rust test process holds the write end of our stdin; when it exits, for
whatever reason, the kernel closes the pipe and this server stops with it.

Exit status 3 means moto (with its server extras) is not installed in this
interpreter, which the Rust side reports as "moto not installed".
"""
import logging
import os
import sys

try:
    from moto.server import ThreadedMotoServer
except ImportError as e:
    print(f"moto-missing: {e}", file=sys.stderr, flush=True)
    sys.exit(3)

# moto checks If-Match / If-None-Match and then stores the object, in two
# steps and without a lock: two conditional PUTs racing on one key can both
# pass the check, and the second silently replaces the first. S3 decides
# conditional writes atomically, and the races in the tests rely on it, so
# object PUTs are made one at a time here.
import threading

from moto.s3.responses import S3Response

_put_lock = threading.Lock()
_put_object = S3Response.put_object


def _put_object_atomically(self, *args, **kwargs):
    with _put_lock:
        return _put_object(self, *args, **kwargs)


S3Response.put_object = _put_object_atomically

# werkzeug logs one line per request to stderr; the tests do not need them,
# and a test process that never reads the pipe must not be able to fill it.
logging.getLogger("werkzeug").setLevel(logging.ERROR)

port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
_, bound = server.get_host_and_port()
print(f"ready {bound}", flush=True)
sys.stdin.read()
# Standard input is closed: the test process is gone. The state is in memory
# only, so there is nothing to flush; leave at once, whatever threads remain.
os._exit(0)
