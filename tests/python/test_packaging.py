"""The Debian package and the systemd units (issue 8).

scripts/package-deb.sh builds the .deb from the already-built binary at TEPUI_BIN; dpkg-deb reads
it back (control fields, file list, conffiles); the extracted binary runs; the extracted units
pass `systemd-analyze verify` with the extracted tree as root, so `ExecStart=/usr/bin/tepui` is
checked against the packaged binary, not the host. crates/tepui/Cargo.toml's
[package.metadata.deb] (for cargo-deb) must describe the same package as packaging/deb/.
Nothing is skipped: a machine without dpkg-deb or systemd-analyze fails these tests.
"""

import os
import platform
import re
import shutil
import subprocess
import tomllib

import pytest

from conftest import REPO, TEPUI_BIN

SCRIPT = os.path.join(REPO, "scripts", "package-deb.sh")
DEB_DIR = os.path.join(REPO, "packaging", "deb")
UNITS = ["tepui-master.service", "tepui-agent.service", "tepui-marathon.service"]
DEFAULT_FLAG_FILES = {
    "/etc/mesos/zk": "zk://localhost:2181/mesos\n",
    "/etc/mesos-master/quorum": "1\n",
    "/etc/mesos-master/work_dir": "/var/lib/mesos/master\n",
    "/etc/mesos-agent/work_dir": "/var/lib/mesos/agent\n",
    "/etc/marathon/conf/master": "zk://localhost:2181/mesos\n",
    "/etc/marathon/conf/zk": "zk://localhost:2181/marathon\n",
}
# Where the host's own units live: `verify` needs sysinit.target and friends under its --root.
HOST_UNIT_DIR = "/usr/lib/systemd/system"
COMMAND_TIMEOUT = 300


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, **kwargs)


def workspace_version():
    with open(os.path.join(REPO, "Cargo.toml"), "rb") as f:
        return tomllib.load(f)["workspace"]["package"]["version"]


def read_assets():
    """packaging/deb/assets as (source, destination, mode) rows."""
    rows = []
    with open(os.path.join(DEB_DIR, "assets")) as f:
        for line in f:
            if line.strip() and not line.lstrip().startswith("#"):
                source, dest, mode = line.split()
                rows.append((source, dest, mode))
    return rows


def read_control_template():
    """packaging/deb/control as a dict of field to value (continuation lines joined by \\n)."""
    fields, last = {}, None
    with open(os.path.join(DEB_DIR, "control")) as f:
        for line in f.read().splitlines():
            if line.startswith(" ") and last:
                fields[last] += "\n" + line[1:]
            else:
                last, value = line.split(":", 1)
                fields[last] = value.strip()
    return fields


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    assert os.access(TEPUI_BIN, os.X_OK), f"no tepui binary at {TEPUI_BIN} (set TEPUI_BIN)"
    out = tmp_path_factory.mktemp("deb")
    r = run([SCRIPT, "--profile", "debug", "--bin", TEPUI_BIN, "--out", str(out)])
    assert r.returncode == 0, f"package-deb.sh failed:\n{r.stdout}\n{r.stderr}"
    path = r.stdout.strip().splitlines()[-1]
    assert os.path.dirname(path) == str(out) and os.path.isfile(path), r.stdout
    yield path
    shutil.rmtree(out)  # a debug package is large; keep no copy around


@pytest.fixture(scope="module")
def tree(deb, tmp_path_factory):
    """The package extracted with `dpkg-deb -x`."""
    root = tmp_path_factory.mktemp("extracted")
    r = run(["dpkg-deb", "-x", deb, str(root)])
    assert r.returncode == 0, r.stderr
    yield str(root)
    shutil.rmtree(root)


def verify_root(tree, dest):
    """A root for `systemd-analyze --root`: the package's units and binary (hard-linked, it is
    large) and the host's units, which ours are ordered against."""
    os.makedirs(os.path.join(dest, "usr", "bin"))
    os.link(os.path.join(tree, "usr/bin/tepui"), os.path.join(dest, "usr/bin/tepui"))
    shutil.copytree(os.path.join(tree, "lib/systemd/system"), os.path.join(dest, "lib/systemd/system"))
    assert os.path.isfile(os.path.join(HOST_UNIT_DIR, "sysinit.target")), (
        f"{HOST_UNIT_DIR} has no sysinit.target: install the systemd package"
    )
    shutil.copytree(HOST_UNIT_DIR, os.path.join(dest, HOST_UNIT_DIR.lstrip("/")), symlinks=True)
    return dest


def verify(root):
    """`systemd-analyze verify` of our three units under `root`: (exit code, lines about them)."""
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing: install the systemd package"
    paths = [os.path.join(root, "lib/systemd/system", unit) for unit in UNITS]
    r = run(["systemd-analyze", f"--root={root}", "verify", *paths], cwd=root)
    ours = [line for line in (r.stdout + r.stderr).splitlines() if "tepui" in line]
    return r.returncode, ours


def test_control_fields_name_the_package_version_and_architecture(deb):
    fields = ["Package", "Version", "Architecture", "Depends", "Recommends", "Section"]
    r = run(["dpkg-deb", "--field", deb, *fields])
    assert r.returncode == 0, r.stderr
    got = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    assert got["Package"] == "tepui"
    assert got["Version"] == workspace_version()
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    assert got["Architecture"] == arch
    if platform.machine() == "x86_64":
        assert got["Architecture"] == "amd64"
    assert "libc6" in got["Depends"], got["Depends"]
    # cargo-deb's "$auto" leaves out libgcc-s1 (always installed); the script must too.
    assert "libgcc" not in got["Depends"], got["Depends"]
    assert got["Recommends"] == "zookeeper, ca-certificates, unzip"
    assert got["Section"] == "admin"
    info = run(["dpkg-deb", "--info", deb])
    assert info.returncode == 0 and "Package: tepui" in info.stdout, info.stdout + info.stderr


def test_contents_list_the_binary_units_and_conffiles_owned_by_root(deb, tmp_path):
    r = run(["dpkg-deb", "--contents", deb])
    assert r.returncode == 0, r.stderr
    listed = {}
    for line in r.stdout.splitlines():
        mode, owner, _size, _date, _time, path = line.split(None, 5)
        listed[path] = (mode, owner)
    assert all(owner == "root/root" for _, owner in listed.values()), r.stdout
    assert listed["./usr/bin/tepui"][0] == "-rwxr-xr-x"
    for unit in UNITS:
        assert listed[f"./lib/systemd/system/{unit}"][0] == "-rw-r--r--", unit
    for path in DEFAULT_FLAG_FILES:
        assert listed["." + path][0] == "-rw-r--r--", path
    assert listed["./"][0] == "drwxr-xr-x"
    assert listed["./usr/share/doc/tepui/copyright"][0] == "-rw-r--r--"

    control = tmp_path / "DEBIAN"
    assert run(["dpkg-deb", "-e", deb, str(control)]).returncode == 0
    assert (control / "conffiles").read_text().split() == list(DEFAULT_FLAG_FILES)
    for script in ["postinst", "postrm"]:
        assert os.access(control / script, os.X_OK), script


def test_the_copyright_file_is_machine_readable(tree):
    # Debian requires /usr/share/doc/<package>/copyright; ours replaces cargo-deb's placeholder.
    with open(os.path.join(tree, "usr/share/doc/tepui/copyright")) as f:
        text = f.read()
    assert text.startswith("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")
    assert "\nLicense: Apache-2.0\n" in text


def test_installed_size_is_cargo_debs_estimate(deb, tree):
    # cargo-deb counts each file's size in KiB, rounded up, plus 1 KiB; the script must agree.
    expected = 0
    for directory, _, files in os.walk(tree):
        for name in files:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                expected += (os.path.getsize(path) + 2047) // 1024
    r = run(["dpkg-deb", "--field", deb, "Installed-Size"])
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == expected


def test_the_extracted_binary_runs(tree):
    r = run([os.path.join(tree, "usr/bin/tepui"), "--version"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"tepui {workspace_version()}"


def test_default_flag_files_hold_the_single_host_defaults(tree):
    for path, content in DEFAULT_FLAG_FILES.items():
        with open(os.path.join(tree, path.lstrip("/"))) as f:
            assert f.read() == content, path


def test_the_packaged_units_pass_systemd_analyze_verify(tree, tmp_path):
    code, ours = verify(verify_root(tree, str(tmp_path / "root")))
    assert code == 0 and not ours, "\n".join(ours)


def test_verify_catches_a_missing_binary_and_an_unknown_key(tree, tmp_path):
    # The check above must be able to fail: a root without the binary, then a unit with a typo.
    root = verify_root(tree, str(tmp_path / "root"))
    os.unlink(os.path.join(root, "usr/bin/tepui"))
    code, ours = verify(root)
    assert code != 0 and any("/usr/bin/tepui" in line for line in ours), ours

    root = verify_root(tree, str(tmp_path / "root2"))
    unit = os.path.join(root, "lib/systemd/system/tepui-agent.service")
    with open(unit) as f:
        text = f.read()
    with open(unit, "w") as f:
        f.write(text.replace("[Service]\n", "[Service]\nKilMode=process\n"))
    code, ours = verify(root)
    assert any("KilMode" in line for line in ours), ours


def unit_settings(path):
    """A unit file as {section: {key: [values]}} (comments and blank lines dropped)."""
    sections, current = {}, None
    with open(path) as f:
        for line in f.read().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            if line.startswith("["):
                current = sections.setdefault(line.strip("[]"), {})
            else:
                key, value = line.split("=", 1)
                current.setdefault(key, []).append(value)
    return sections


@pytest.mark.parametrize(
    "unit,exec_start,defaults",
    [
        ("tepui-master.service", "/usr/bin/tepui master --config_dir=/etc/mesos-master", "tepui-master"),
        ("tepui-agent.service", "/usr/bin/tepui agent --config_dir=/etc/mesos-agent", "tepui-agent"),
        ("tepui-marathon.service", "/usr/bin/tepui marathon --config_dir=/etc/marathon/conf", "tepui-marathon"),
    ],
)
def test_units_start_the_role_and_restart_it_on_failure(tree, unit, exec_start, defaults):
    s = unit_settings(os.path.join(tree, "lib/systemd/system", unit))
    service, section = s["Service"], s["Unit"]
    assert service["ExecStart"] == [exec_start]
    assert service["EnvironmentFile"] == [f"-/etc/default/{defaults}"]
    assert service["Restart"] == ["on-failure"]
    assert service["LimitNOFILE"] == ["65536"]
    assert 0 < int(service["RestartSec"][0]) <= 10
    # Restart a flapping role for a while, not forever.
    assert int(section["StartLimitBurst"][0]) > 1 and int(section["StartLimitIntervalSec"][0]) > 0
    assert "network-online.target" in section["Wants"][0].split()
    assert "network-online.target" in section["After"][0].split()
    if unit == "tepui-agent.service":
        # Tasks live under the launcher daemon, which must survive an agent restart.
        assert service["KillMode"] == ["process"]
        assert service["Delegate"] == ["yes"]
    else:
        assert "KillMode" not in service
    if unit == "tepui-marathon.service":
        assert "zookeeper.service" in section["After"][0].split()


def test_maintainer_scripts_reload_systemd_only_when_it_runs(tmp_path):
    for name in ["postinst", "postrm"]:
        script = os.path.join(DEB_DIR, "maintainer-scripts", name)
        assert run(["sh", "-n", script]).returncode == 0, name
        with open(script) as f:
            text = f.read()
        assert "[ -d /run/systemd/system ]" in text and "daemon-reload" in text, name
        # Never enable or start a unit: the operator configures first.
        assert not re.search(r"systemctl[^\n]*\b(enable|start|restart)\b|deb-systemd", text), name
    if not os.path.isdir("/run/systemd/system"):
        r = run(["sh", os.path.join(DEB_DIR, "maintainer-scripts", "postinst"), "configure"])
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_cargo_deb_metadata_agrees_with_the_packaging_files():
    with open(os.path.join(REPO, "crates", "tepui", "Cargo.toml"), "rb") as f:
        manifest = tomllib.load(f)
    meta = manifest["package"]["metadata"]["deb"]
    crate_dir = os.path.join(REPO, "crates", "tepui")

    def from_repo_root(source):
        # cargo-deb paths are relative to the crate, except its special target/release/ prefix.
        if source.startswith("target/release/"):
            return source
        return os.path.relpath(os.path.normpath(os.path.join(crate_dir, source)), REPO)

    cargo_assets = [(from_repo_root(src), dest, mode) for src, dest, mode in meta["assets"]]
    assets = read_assets()
    assert cargo_assets == assets
    for source, _, _ in assets:
        assert source == "target/release/tepui" or os.path.isfile(os.path.join(REPO, source)), source
    etc = ["/" + dest for _, dest, _ in assets if dest.startswith("etc/")]
    assert meta["conf-files"] == etc == list(DEFAULT_FLAG_FILES)
    scripts = os.path.normpath(os.path.join(crate_dir, meta["maintainer-scripts"]))
    assert scripts == os.path.join(DEB_DIR, "maintainer-scripts")

    control = read_control_template()
    assert meta["name"] == control["Package"] == "tepui"
    assert meta["maintainer"] == control["Maintainer"]
    assert meta["section"] == control["Section"]
    assert meta["priority"] == control["Priority"]
    assert meta["recommends"] == control["Recommends"]
    synopsis, extended = control["Description"].split("\n", 1)
    assert manifest["package"]["description"] == synopsis
    assert meta["extended-description"] == extended
    # cargo-deb rewraps a line of 80 characters or more and turns a blank one into " .".
    for line in extended.split("\n"):
        assert line.strip() and len(line) < 80 and "\t" not in line, repr(line)
    # The .deb's version is the workspace version exactly, with Depends computed from the binary.
    assert meta["revision"] == ""
    assert meta["depends"] == "$auto"


@pytest.mark.parametrize(
    "args,flag",
    [
        (["--profile", "fast"], "--profile"),
        (["--bin", "/nonexistent/tepui"], "--bin"),
        (["--out"], "--out"),
        (["--frobnicate"], "--frobnicate"),
    ],
)
def test_the_script_names_a_bad_argument(args, flag):
    r = run([SCRIPT, *args])
    assert r.returncode == 2, r.stdout + r.stderr
    assert flag in r.stderr, r.stderr
