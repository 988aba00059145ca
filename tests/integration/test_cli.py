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
    "homemail-passwd": ("homemail-passwd.8", 64),
}
CONF_PAGES = ["homemail-deliver.conf.5", "homemail-scan.conf.5", "homemail-users.5"]
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
