"""test_auth_cli.py — homemail-user against a private dovecot using the module.

Every change the CLI makes is checked where it matters: through real
logins (doveadm auth test on the module), in the users file and on disk.
Guards against: hashes printed by default, a bad input that half-writes the
file, homes created with the wrong owner or mode, a lock that does not
stop logins, an unlock that leaves the lockout counters behind.
"""
import os
import pwd
import stat
import subprocess
import concurrent.futures

import pytest

import hmtest
from test_auth_module import Env, HMUSER

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture(scope="module")
def cli_env():
    u = hmtest.make_user()
    e = Env([u], args="max_failures=3 backoff_after=0 lock_time=600").start()
    yield e
    e.stop()


def hu(env, *args, input=None):
    return subprocess.run([HMUSER, "--users", env.users_path, "--lockout", env.lockout_path]
                          + list(args), input=input, capture_output=True, text=True)


def add(env, addr, pw, *extra):
    local = addr.split("@")[0]
    return hu(env, "add", addr, "--uid", str(NOBODY.pw_uid), "--gid", str(NOBODY.pw_gid),
              "--home", f"{env.vhomes}/cli/{local}", "--password-stdin", *extra, input=pw + "\n")


def test_add_creates_account_and_home(cli_env):
    r = add(cli_env, "Cli.One@Home.com.bo", "Cli-pw-1", "--quota", "2G")
    assert r.returncode == 0, r.stderr
    home = f"{cli_env.vhomes}/cli/Cli.One"
    for p in (home, home + "/Maildir", home + "/Maildir/new", home + "/Maildir/cur", home + "/Maildir/tmp"):
        st = os.stat(p)
        assert st.st_uid == NOBODY.pw_uid and stat.S_IMODE(st.st_mode) == 0o700, p
    assert stat.S_IMODE(os.stat(f"{cli_env.vhomes}/cli").st_mode) == 0o755
    line = [l for l in cli_env.users_text().splitlines() if l.startswith("cli.one@")][0]
    f = line.split(":")
    assert f[1].startswith("$y$") and f[5] == "2G" and len(f) == 7
    assert cli_env.auth("cli.one@home.com.bo", "Cli-pw-1")[0]
    r = cli_env.d.doveadm("user", "cli.one@home.com.bo")
    assert "quota_rule\t*:storage=%dB" % (2 << 30) in r.stdout


def test_bad_input_is_refused_without_touching_the_file(cli_env):
    before = cli_env.users_text()
    cases = [
        (("add", "bad address@home.com.bo", "--uid", "65534", "--gid", "65534", "--password-stdin"), "x\n", 65),
        (("add", "a@b@c", "--uid", "65534", "--gid", "65534", "--password-stdin"), "x\n", 65),
        (("add", "q@home.com.bo", "--uid", "65534", "--gid", "65534", "--home", "rel/dir", "--password-stdin"), "x\n", 65),
        (("add", "q@home.com.bo", "--uid", "65534", "--gid", "65534", "--home", "/tmp/a/../b", "--password-stdin"), "x\n", 65),
        (("add", "q@home.com.bo", "--uid", "65534", "--gid", "65534", "--quota", "lots", "--password-stdin"), "x\n", 65),
        (("add", "q@home.com.bo", "--uid", "0", "--gid", "0", "--password-stdin"), "x\n", 64),
        (("add", "q@home.com.bo", "--uid", "65534", "--gid", "65534", "--password-stdin"), "\n", 65),
        (("add", "q@home.com.bo", "--uid", "65534", "--gid", "65534", "--password-stdin"), "a\0b\n", 65),
        (("add", "q@home.com.bo", "--uid", "65534", "--gid", "65534", "--password-stdin"), "p" * 2000 + "\n", 65),
        (("add", "q@home.com.bo", "--uid", "65534", "--gid", "65534", "--scheme", "md5", "--password-stdin"), "x\n", 64),
        (("passwd", "nosuch@home.com.bo", "--password-stdin"), "x\n", 67),
        (("del", "nosuch@home.com.bo"), None, 67),
        (("lock", "nosuch@home.com.bo"), None, 67),
        (("frobnicate", "x@home.com.bo"), None, 64),
        (("add",), None, 64),
    ]
    for args, inp, code in cases:
        r = hu(cli_env, *args, input=inp)
        assert r.returncode == code, (args, r.returncode, r.stderr)
        assert r.stderr.startswith("homemail-user: ") or code == 64, (args, r.stderr)
    assert cli_env.users_text() == before
    # an existing account is not overwritten
    assert add(cli_env, "dup@home.com.bo", "Dup-pw").returncode == 0
    r = add(cli_env, "DUP@home.com.bo", "Other-pw")
    assert r.returncode == 65 and "exists" in r.stderr
    assert cli_env.auth("dup@home.com.bo", "Dup-pw")[0]


def test_passwd_lock_unlock_show_del(cli_env):
    assert add(cli_env, "cyc@home.com.bo", "Cyc-pw-1").returncode == 0
    r = hu(cli_env, "passwd", "cyc@home.com.bo", "--scheme", "sha512-crypt", "--password-stdin",
           input="Cyc-pw-2\n")
    assert r.returncode == 0, r.stderr
    assert not cli_env.auth("cyc@home.com.bo", "Cyc-pw-1")[0]
    assert cli_env.auth("cyc@home.com.bo", "Cyc-pw-2")[0]     # and rehashed to yescrypt
    # no hash in list/show unless asked
    r = hu(cli_env, "list")
    assert "cyc@home.com.bo" in r.stdout and "$y$" not in r.stdout and "$6$" not in r.stdout
    r = hu(cli_env, "show", "cyc@home.com.bo")
    assert "state: active" in r.stdout and "$" not in r.stdout.replace("scheme", "")
    assert "hash: $y$" in hu(cli_env, "show", "cyc@home.com.bo", "--hash").stdout
    # lock: the right password is refused, mail lookups still work
    assert hu(cli_env, "lock", "cyc@home.com.bo").returncode == 0
    assert not cli_env.auth("cyc@home.com.bo", "Cyc-pw-2")[0]
    assert cli_env.d.doveadm("user", "cyc@home.com.bo").returncode == 0
    assert "locked" in hu(cli_env, "list").stdout
    assert "account locked" in cli_env.d.log()
    assert hu(cli_env, "unlock", "cyc@home.com.bo").returncode == 0
    assert cli_env.auth("cyc@home.com.bo", "Cyc-pw-2")[0]
    # lockout counters are shown and cleared by unlock
    for i in range(3):
        assert not cli_env.auth("cyc@home.com.bo", f"wrong{i}")[0]
    r = hu(cli_env, "show", "cyc@home.com.bo")
    assert "locked: yes" in r.stdout and "retry_after:" in r.stdout, r.stdout
    assert not cli_env.auth("cyc@home.com.bo", "Cyc-pw-2")[0]
    assert hu(cli_env, "unlock", "cyc@home.com.bo").returncode == 0
    assert "locked: no" in hu(cli_env, "show", "cyc@home.com.bo").stdout
    assert cli_env.auth("cyc@home.com.bo", "Cyc-pw-2")[0]
    # del keeps the home unless asked
    home = f"{cli_env.vhomes}/cli/cyc"
    assert hu(cli_env, "del", "cyc@home.com.bo").returncode == 0
    assert os.path.isdir(home)
    assert not cli_env.auth("cyc@home.com.bo", "Cyc-pw-2")[0]
    assert add(cli_env, "cyc@home.com.bo", "Cyc-pw-3").returncode == 0
    assert hu(cli_env, "del", "cyc@home.com.bo", "--remove-home").returncode == 0
    assert not os.path.exists(home)


def test_concurrent_cli_writers(cli_env):
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda i: add(cli_env, f"par{i}@home.com.bo", f"Par-pw-{i}"), range(12)))
    assert all(r.returncode == 0 for r in rs), [r.stderr for r in rs if r.returncode]
    text = cli_env.users_text()
    for i in range(12):
        assert sum(l.startswith(f"par{i}@") for l in text.splitlines()) == 1
    assert cli_env.auth("par7@home.com.bo", "Par-pw-7")[0]
    assert text.startswith("# homemail virtual users (test)\n")
