# -*- coding: utf-8 -*-
"""Drives statecast-viewer through Autobahn|Testsuite's fuzzing server, one
viewer process and one connection per case (runs on Python 2.7 and 3).

  viewer_cases.py --viewer BIN --server ws://127.0.0.1:PORT [--agent NAME] [--case-timeout S]

Asks the server for its case count (/getCaseCount), then for every case N
starts `BIN --format quiet --no-jitter ws://…/runCase?case=N&agent=NAME`,
waits until that one connection has ended (the viewer reports it on stderr
before its first reconnect, which is 2 s away) and stops the viewer with
SIGINT. Finally asks the server to write its reports (/updateReports).
Exits 2 when the server cannot be reached or a viewer cannot be started.
"""
from __future__ import print_function

import argparse
import base64
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

try:
    from urllib.parse import urlparse
except ImportError:  # Python 2.7
    from urlparse import urlparse


def websocket_text(url, timeout=30.0):
    """Opens `url` with a bare WebSocket handshake and returns the first text
    message (or "" when the server closes without one)."""
    parsed = urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout)
    try:
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        path = parsed.path + ("?" + parsed.query if parsed.query else "")
        request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                   % (path, parsed.hostname, parsed.port, key))
        sock.sendall(request.encode("ascii"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise IOError("%s closed during the handshake" % url)
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise IOError("%s answered %r" % (url, head.split(b"\r\n")[0]))
        while True:
            while len(data) < 2:
                chunk = sock.recv(4096)
                if not chunk:
                    return ""
                data += chunk
            opcode, length, at = bytearray(data)[0] & 0x0F, bytearray(data)[1] & 0x7F, 2
            if length == 126:
                length, at = struct.unpack("!H", data[2:4])[0], 4
            elif length == 127:
                length, at = struct.unpack("!Q", data[2:10])[0], 10
            while len(data) < at + length:
                chunk = sock.recv(4096)
                if not chunk:
                    return ""
                data += chunk
            payload, data = data[at:at + length], data[at + length:]
            if opcode == 1:
                # A masked Close 1000 (mask key 0) to end politely.
                sock.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
                return payload.decode("utf-8")
            if opcode == 8:
                return ""
    finally:
        sock.close()


class Viewer(object):
    """One statecast-viewer process; its stderr lines collected in a thread."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args, stdin=open(os.devnull), stdout=open(os.devnull, "w"),
                                     stderr=subprocess.PIPE)
        self.lines = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._pump)
        self.thread.daemon = True
        self.thread.start()

    def _pump(self):
        for raw in iter(self.proc.stderr.readline, b""):
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def connection_ended(self):
        """True once the viewer reported the end of its (first) connection or attempt."""
        with self.lock:
            return any("reconnecting in" in line or "refused the token" in line for line in self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            deadline = time.time() + 10
            while self.proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(5)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewer", required=True)
    parser.add_argument("--server", required=True, help="ws://HOST:PORT of wstest -m fuzzingserver")
    parser.add_argument("--agent", default="statecast-viewer")
    parser.add_argument("--case-timeout", type=float, default=120.0)
    parser.add_argument("--log", help="append every viewer's stderr here")
    args = parser.parse_args()

    try:
        count = int(websocket_text(args.server + "/getCaseCount"))
    except (IOError, OSError, ValueError) as error:
        print("conformance: cannot get the case count from %s: %s" % (args.server, error), file=sys.stderr)
        return 2
    print("conformance: %d cases for %s" % (count, args.agent), file=sys.stderr)

    log = open(args.log, "a") if args.log else None
    started = time.time()
    stuck = []
    for case in range(1, count + 1):
        url = "%s/runCase?case=%d&agent=%s" % (args.server, case, args.agent)
        try:
            viewer = Viewer([args.viewer, "--format", "quiet", "--no-jitter", "--log-level", "info", url])
        except OSError as error:
            print("conformance: cannot start %s: %s" % (args.viewer, error), file=sys.stderr)
            return 2
        deadline = time.time() + args.case_timeout
        while not viewer.connection_ended() and viewer.proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        if not viewer.connection_ended() and viewer.proc.poll() is None:
            stuck.append(case)
        viewer.stop()
        if log:
            log.write("== case %d (%s)\n%s\n" % (case, url, "\n".join(viewer.lines)))
        if case % 25 == 0 or case == count:
            print("conformance: %d/%d cases in %d s" % (case, count, time.time() - started), file=sys.stderr)
    if stuck:
        print("conformance: the connection had not ended after %d s in case(s) %s (viewer stopped)"
              % (args.case_timeout, ", ".join(map(str, stuck))), file=sys.stderr)

    try:
        websocket_text("%s/updateReports?agent=%s" % (args.server, args.agent))
    except (IOError, OSError) as error:
        print("conformance: cannot ask %s to write its reports: %s" % (args.server, error), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
