"""TLS on a real `tepui dev`: the fetcher downloads `https://` artifacts and verifies their
certificate against the agent's trust store (here a test CA given by `SSL_CERT_FILE`), refusing a
server it cannot verify; HTTPS health checks, Marathon's (`HTTPS`) and the agent's
(`MESOS_HTTPS`), pass against a task serving a self-signed certificate (they ask whether the task
answers, not who it is, as Marathon and Mesos' `curl -k` do).
"""

import subprocess

import pytest

from conftest import running_dev, wait_until
from marathon_http import deploy, get_app, wait_deployed
from static_server import script_tarball, serve
from test_marathon_dev import read_file, sandbox_of

SMALL = {"cpus": 0.01, "mem": 16, "disk": 0}


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls(tmp_path):
    """A test CA (ca.pem), a server certificate for 127.0.0.1 signed by it (server.pem/key), and a
    self-signed one nobody trusts (self.pem/key), under tmp_path."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=tepui test CA", cwd=tmp_path)
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=tmp_path)
    (tmp_path / "ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext", cwd=tmp_path)
    openssl("req", "-x509", *ec, "-keyout", "self.key", "-out", "self.pem", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", cwd=tmp_path)
    tmp_path.chmod(0o755)
    for name in ("self.key", "server.key"):
        (tmp_path / name).chmod(0o644)
    return tmp_path


@pytest.fixture
def dev_trusting_test_ca(request, tls):
    """`tepui dev` with Marathon whose trust store is the test CA alone."""
    with running_dev(request.node.nodeid, marathon=True, env={"SSL_CERT_FILE": str(tls / "ca.pem")}) as dev:
        yield dev


def test_https_artifacts_are_fetched_from_a_verified_server_only(dev_trusting_test_ca, tls, tmp_path):
    dev = dev_trusting_test_ca
    url = dev.marathon_url
    www = tmp_path / "www"
    www.mkdir()
    script_tarball(www / "app.tgz", "run.sh", "#!/bin/sh\necho fetched-over-tls\n")
    trusted, trusted_server = serve(www, tls / "server.pem", tls / "server.key")
    untrusted, untrusted_server = serve(www, tls / "self.pem", tls / "self.key")
    try:
        deploy(url, "POST", "/v2/apps", {
            "id": "/tls-fetch", "instances": 1, **SMALL, "cmd": "./run.sh; sleep 600",
            "fetch": [{"uri": f"{trusted}/app.tgz"}],
        }, expect=(201,))
        app = wait_deployed(url, "/tls-fetch", 1)
        task_id = app["tasks"][0]["id"]
        sandbox = wait_until(lambda: sandbox_of(dev, task_id), 10, f"the sandbox of {task_id}")
        wait_until(lambda: "fetched-over-tls" in (read_file(dev, f"{sandbox}/stdout") or ""), 20,
                   "the fetched script's output")

        deploy(url, "POST", "/v2/apps", {
            "id": "/tls-untrusted", "instances": 1, **SMALL, "cmd": "./run.sh; sleep 600", "backoffSeconds": 600,
            "fetch": [{"uri": f"{untrusted}/app.tgz"}],
        }, expect=(201,))
        last = wait_until(lambda: get_app(url, "/tls-untrusted").get("lastTaskFailure"), 30,
                          "the untrusted fetch's task failure")
        assert last["state"] == "TASK_FAILED", last
        assert f"{untrusted}/app.tgz" in last["message"] and "Failed to fetch" in last["message"], last
    finally:
        trusted_server.shutdown()
        untrusted_server.shutdown()


HTTPS_TASK = ("exec python3 -c \"import http.server, os, ssl; "
              "s = http.server.HTTPServer(('', int(os.environ['PORT0'])), http.server.SimpleHTTPRequestHandler); "
              "c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain('self.pem', 'self.key'); "
              "s.socket = c.wrap_socket(s.socket, server_side=True); s.serve_forever()\"")


@pytest.mark.parametrize("protocol", ["HTTPS", "MESOS_HTTPS"])
def test_https_health_checks_pass_against_a_self_signed_task(dev_marathon, tls, protocol):
    url = dev_marathon.marathon_url
    app_id = f"/tls-health-{protocol.lower().replace('_', '-')}"
    deploy(url, "POST", "/v2/apps", {
        "id": app_id, "instances": 1, **SMALL, "cmd": HTTPS_TASK,
        "portDefinitions": [{"port": 0}],
        "fetch": [{"uri": f"file://{tls / 'self.pem'}"}, {"uri": f"file://{tls / 'self.key'}"}],
        "healthChecks": [{"protocol": protocol, "portIndex": 0, "path": "/", "gracePeriodSeconds": 60,
                          "intervalSeconds": 2, "timeoutSeconds": 1, "maxConsecutiveFailures": 3}],
    }, expect=(201,))

    def healthy():
        app = get_app(url, app_id)
        return app if app.get("tasksHealthy") == 1 and not app["deployments"] else None

    app = wait_until(healthy, 60, f"{app_id}'s task healthy over HTTPS")
    assert app["tasksUnhealthy"] == 0, app
