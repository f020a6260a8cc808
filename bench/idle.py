#!/usr/bin/env python3
"""Idle connections against a sluice binary: RSS before and after N client connections
that send nothing (or, with --partial, half a request line), and how long a new client
then waits for its answer. Everything on 127.0.0.1; the processes it starts are stopped
by PID when it ends.

    bench/idle.py BINARY [N=10000] [--partial]
"""
import http.server
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 10000
    partial = "--partial" in sys.argv
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    listen, admin = free_port(), free_port()
    with tempfile.TemporaryDirectory() as d:
        config = f"{d}/idle.yaml"
        with open(config, "w") as f:
            f.write(
                f'server: {{ listen: "127.0.0.1:{listen}", admin_listen: "127.0.0.1:{admin}", '
                f"threads: 2, grace_period_s: 1, client_header_timeout_ms: 60000 }}\n"
                f'upstreams:\n  g: {{ peers: ["127.0.0.1:{upstream.server_port}"] }}\n'
                f"routes:\n  - {{ name: r, path_prefix: /, upstream: g }}\n"
            )
        proc = subprocess.Popen(
            [binary, "--config", config, "--upgrade-sock", f"{d}/u.sock"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.5)
            if proc.poll() is not None:
                sys.exit(f"{binary} exited at start (code {proc.returncode}): does it know the config?")

            def rss():
                status = open(f"/proc/{proc.pid}/status").read()
                return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) // 1024

            before = rss()
            conns = []
            for _ in range(n):
                c = socket.create_connection(("127.0.0.1", listen))
                if partial:
                    c.sendall(b"GET /idl")
                conns.append(c)
            time.sleep(2)
            after = rss()
            started = time.monotonic()
            c = socket.create_connection(("127.0.0.1", listen))
            c.sendall(b"GET /new HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = c.recv(64)
            waited = (time.monotonic() - started) * 1000
            print(
                f"{n} idle ({'half a request line' if partial else 'silent'}): "
                f"RSS {before} -> {after} MiB; a new client answered in {waited:.1f} ms "
                f"({answer[:12]!r})"
            )
            for c in conns:
                c.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            upstream.shutdown()


if __name__ == "__main__":
    main()
