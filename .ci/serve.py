"""Static server for www/ on 127.0.0.1 with the wasm MIME type and no caching (rebuilds show)."""
import http.server
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "www")


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=ROOT, **kwargs)

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
with http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler) as httpd:
    print(f"GAN Playground: open http://127.0.0.1:{port}/ (Ctrl-C stops)", flush=True)
    httpd.serve_forever()
