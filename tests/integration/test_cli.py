"""test_cli.py — the command-line tools behave like Debian's (issue 20):
`--help` prints the usage on stdout and exits 0, `--version` prints the
package version from debian/changelog, a usage error still goes to stderr
with the tool's own exit code, every tool and configuration file has a man
page that the Debian package installs, and each page renders without a
single groff/man warning."""
import os
import re
import subprocess

import pytest

import hmtest

TOOLS = {  # tool -> (man page, exit code of a usage error)
    "homemail-deliver": ("homemail-deliver.8", 64),
    "homemail-sieve": ("homemail-sieve.1", 2),
    "homemail-scan": ("homemail-scan.1", 64),
    "homemail-user": ("homemail-user.8", 64),
    "homemail-dmarc-report": ("homemail-dmarc-report.8", 64),
    "homemail-backup": ("homemail-backup.8", 64),
    "homemail-restore": ("homemail-restore.8", 64),
    "homemail-status": ("homemail-status.8", 64),
    "homemail-report": ("homemail-report.8", 64),
    "homemail-passwd": ("homemail-passwd.8", 64),
}
CONF_PAGES = ["homemail-deliver.conf.5", "homemail-scan.conf.5", "homemail-users.5",
              "homemail-backup.conf.5"]
MAN = os.path.join(hmtest.TOP, "man")


def changelog_version():
    with open(os.path.join(hmtest.TOP, "debian", "changelog")) as f:
        return re.match(r"^\S+ \(([^)]+)\)", f.readline()).group(1)


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_help_on_stdout_exit_0(tool):
    r = subprocess.run([os.path.join(hmtest.BUILD, tool), "--help"], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r
    assert r.stdout.startswith(f"usage: {tool}"), r.stdout
    assert r.stderr == ""


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_version_is_the_package_version(tool):
    r = subprocess.run([os.path.join(hmtest.BUILD, tool), "--version"], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r
    assert r.stdout == f"{tool} {changelog_version()}\n"


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_usage_error_on_stderr(tool):
    r = subprocess.run([os.path.join(hmtest.BUILD, tool), "--no-such-option", "x"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == TOOLS[tool][1], r
    assert r.stdout == ""
    assert "usage:" in r.stderr


def test_help_only_as_the_sole_argument():
    """homemail-deliver exits 0 for "delivered": --help as an option's value
    must never end a delivery with 0 and nothing stored."""
    r = subprocess.run([os.path.join(hmtest.BUILD, "homemail-deliver"), "-f", "--help",
                        "--maildir", "/nonexistent/x", "--no-sieve"],
                       input=b"Subject: x\n\nbody\n", capture_output=True)
    assert r.returncode != 0, r


@pytest.mark.parametrize("page", sorted([p for p, _ in TOOLS.values()] + CONF_PAGES))
def test_man_page_renders_cleanly_and_is_packaged(page):
    path = os.path.join(MAN, page)
    r = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    text = re.sub(".\x08", "", r.stdout)   # no bold/underline overstrikes
    name = page.rsplit(".", 1)[0]
    assert re.search(rf"^NAME\n\s+{re.escape(name)}\s+-\s", text, re.M), text[:300]
    with open(os.path.join(hmtest.TOP, "debian", "homemail.manpages")) as f:
        assert f"man/{page}" in f.read().split()


PY_TOOLS = ["homemail-status", "homemail-report", "homemail-backup", "homemail-restore"]


def test_python_tools_import_the_shared_module_and_leave_no_bytecode():
    """The Python admin tools import homemail_admin.py from beside their own
    real path (run here through a symlink elsewhere, as a copy staged from
    build/), and write no __pycache__ there: the package installs the
    module to /usr/share/homemail/python and must not leave files behind
    that it does not own."""
    d = hmtest._workdir("pytools")
    for tool in PY_TOOLS:
        link = os.path.join(d, tool)
        os.symlink(os.path.join(hmtest.BUILD, tool), link)
        r = subprocess.run([link, "--version"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=""))
        assert r.returncode == 0 and r.stdout == f"{tool} {changelog_version()}\n", r
    for where in (hmtest.BUILD, d):
        assert not os.path.exists(os.path.join(where, "__pycache__")), where
