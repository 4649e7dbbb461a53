#!/usr/bin/env python3
"""The lab brief's relay server, written literally, as the benchmark's baseline.

A thread per keyboard; one list of display sockets behind one lock; each frame read with
recvall() and sent with a blocking sendall() to one display after another. Frames are
relayed as received (big-endian peers only), and a display whose send fails is dropped.

Usage: brief_server.py --host H --port P [--cert FILE --key FILE]
Logs "listening on H:P" on stderr once it accepts connections.
"""

import argparse
import socket
import ssl
import struct
import sys
import threading

DISPLAY = 1
KEYBOARD = 2

displays = []
displays_lock = threading.Lock()


def recvall(sock, n):
    """Reads exactly n bytes, or returns None if the peer closes first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def keyboard_thread(sock):
    try:
        while True:
            head = recvall(sock, 4)
            if head is None:
                break
            (overall,) = struct.unpack("!i", head)
            if overall < 32:
                break
            body = recvall(sock, overall)
            if body is None:
                break
            frame = head + body
            with displays_lock:
                for display in list(displays):
                    try:
                        display.sendall(frame)
                    except OSError:
                        displays.remove(display)
                        display.close()
    except OSError:
        pass
    finally:
        sock.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=55200)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(1024)
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        listener = context.wrap_socket(listener, server_side=True)
    print(f"listening on {args.host}:{listener.getsockname()[1]}", file=sys.stderr, flush=True)

    while True:
        try:
            conn, _ = listener.accept()
            code = recvall(conn, 4)
        except (OSError, ssl.SSLError):
            continue
        if code is None:
            conn.close()
            continue
        (role,) = struct.unpack("!i", code)
        if role == DISPLAY:
            with displays_lock:
                displays.append(conn)
        elif role == KEYBOARD:
            threading.Thread(target=keyboard_thread, args=(conn,), daemon=True).start()
        else:
            conn.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
