#!/usr/bin/env python3
"""Minimal sd_notify receiver for tests (python3 stdlib only).

Usage: python3 notify_listener.py ADDRESS

ADDRESS is an absolute path or "@name" (abstract socket, bound to "\\0name"
with exact length, no trailing NUL). Binds an AF_UNIX SOCK_DGRAM socket with
SO_PASSCRED, prints "LISTENING" (flushed), then one JSON line per datagram:
  {"pid":N,"uid":N,"gid":N,"data":"...","t":<time.time()>}

Every fd received via SCM_RIGHTS is closed immediately: systemd-notify's
BARRIER=1 handshake passes a pipe fd and blocks until the receiver closes it.
Exits cleanly on SIGTERM/SIGINT and removes a path socket file on exit.
"""

import array
import json
import os
import signal
import socket
import struct
import sys
import time

MAX_DATAGRAM = 4096
MAX_FDS = 16


def main() -> int:
    if len(sys.argv) != 2:
        sys.stderr.write("usage: notify_listener.py ADDRESS\n")
        return 2
    address = sys.argv[1]
    path = None
    if address.startswith("@"):
        bind_addr = "\0" + address[1:]
    elif address.startswith("/"):
        bind_addr = address
        path = address
    else:
        sys.stderr.write("ADDRESS must be an absolute path or @name\n")
        return 2

    stopping = False

    def on_term(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        # Plenty of receive buffer so a burst of notifications is not dropped.
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        except OSError:
            pass
        if path is not None and os.path.exists(path):
            os.unlink(path)
        sock.bind(bind_addr)
        if path is not None:
            # Let any uid send to it (tests may drop privileges in children).
            try:
                os.chmod(path, 0o777)
            except OSError:
                pass

        out = sys.stdout
        out.write("LISTENING\n")
        out.flush()

        creds_size = struct.calcsize("3i")
        anc_size = socket.CMSG_SPACE(creds_size) + socket.CMSG_SPACE(
            MAX_FDS * array.array("i").itemsize
        )

        while not stopping:
            try:
                data, ancdata, _flags, _addr = sock.recvmsg(MAX_DATAGRAM, anc_size)
            except InterruptedError:
                continue
            pid = uid = gid = -1
            for level, ctype, cdata in ancdata:
                if level != socket.SOL_SOCKET:
                    continue
                if ctype == socket.SCM_CREDENTIALS and len(cdata) >= creds_size:
                    pid, uid, gid = struct.unpack("3i", cdata[:creds_size])
                elif ctype == socket.SCM_RIGHTS:
                    fds = array.array("i")
                    usable = len(cdata) - (len(cdata) % fds.itemsize)
                    fds.frombytes(cdata[:usable])
                    for fd in fds:
                        try:
                            os.close(fd)
                        except OSError:
                            pass
            line = json.dumps(
                {
                    "pid": pid,
                    "uid": uid,
                    "gid": gid,
                    "data": data.decode("utf-8", errors="replace"),
                    "t": time.time(),
                },
                separators=(",", ":"),
            )
            out.write(line + "\n")
            out.flush()
    except SystemExit:
        pass
    except BrokenPipeError:
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass
        if path is not None:
            try:
                os.unlink(path)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
