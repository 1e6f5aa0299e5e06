"""A static file server on 127.0.0.1 for tests that need artifacts served over real HTTP or HTTPS
(the fetcher's downloads)."""

import http.server
import ssl
import threading


def serve(directory, cert=None, key=None):
    """Serves `directory` on a free port, over HTTPS when `cert` and `key` are given; returns
    (base URL, server); `server.requests` lists the paths asked for. Call `server.shutdown()` when
    done."""

    requests = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    port = server.server_address[1]
    server.requests = requests  # the paths asked for, in order
    scheme = "http"
    if cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"{scheme}://127.0.0.1:{port}", server


def script_tarball(path, member, script):
    """Writes a gzipped tar at `path` holding one executable file `member` with text `script`."""
    import io
    import tarfile

    data = script.encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(data))
