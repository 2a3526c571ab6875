"""An HTTP receiver for the e2e tests: answers 200 to every POST and writes its body to
OUT_DIR/<n>.json (written whole, then renamed). Prints "ready" once listening; stops when its
stdin closes.

    python3 http-inbox.py ADDRESS PORT OUT_DIR
"""

import http.server
import os
import sys
import threading

address, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
count = [0]


class Inbox(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with lock:
            count[0] += 1
            path = os.path.join(out, f"{count[0]:04}.json")
        with open(path + ".tmp", "wb") as f:
            f.write(body)
        os.rename(path + ".tmp", path)
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer((address, port), Inbox)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
server.shutdown()
