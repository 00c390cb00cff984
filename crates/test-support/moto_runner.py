"""Runs a moto S3 server on 127.0.0.1:PORT until standard input closes.

The Rust test process holds the write end of our stdin; when it exits, for
whatever reason, the pipe closes and this server stops with it.
"""
import sys

from moto.server import ThreadedMotoServer

port = int(sys.argv[1])
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print("ready", flush=True)
sys.stdin.read()
server.stop()
