"""test_harden_probes.py — the security probes of issue 8, against the real pieces.

Each probe attacks the built component itself (homemail-deliver, the Sieve
engine inside it, a private exim4 with homemail_scan.so's recipient check, a
private dovecot with libauthdb_homemail.so) from an "outside" loopback
address (127.0.0.2: Debian's stock configs trust 127.0.0.1, see
docs/design.md's field notes).  The probes of configuration behaviour (AUTH
before TLS, plaintext login, relaying, unknown recipients) run the
configuration the package installs (hmtest.PackageExim / PackageDovecot:
Debian's exim4 conf.d with conf/exim4/conf.d laid over it, homemail's
dovecot snippets and auth backend), so they fail when homemail's snippets
are missing or wrong:

  * the LDA refuses to run as root, and refuses symlinked Maildir components;
  * `fileinto` (and -m) cannot leave the Maildir, whatever the folder name;
  * SMTP AUTH is not offered before STARTTLS; IMAP/POP3 refuse plaintext login;
  * no open relay, including the classic address tricks;
  * unknown recipients are refused at RCPT (no bounce is ever generated);
  * the auth lockout holds under a burst of parallel wrong passwords;
  * files and sockets have the modes the design names.
"""
import concurrent.futures
import imaplib
import os
import re
import shutil
import smtplib
import stat
import subprocess
import time

import pytest

import hmtest

DELIVER = os.path.join(hmtest.BUILD, "homemail-deliver")
SCAN_SO = os.path.join(hmtest.BUILD, "homemail_scan.so")
AUTH_SO = os.path.join(hmtest.BUILD, "libauthdb_homemail.so")
HMUSER = os.path.join(hmtest.BUILD, "homemail-user")
OUTSIDE = "127.0.0.2"


def _env():
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def deliver_as(user, args, msg, **kw):
    """homemail-deliver as the user (the way Exim's pipe transport runs it)."""
    return subprocess.run([DELIVER] + args, input=msg, capture_output=True, env=_env(),
                          user=user.uid, group=user.gid, extra_groups=[], cwd=user.home,
                          timeout=60, **kw)


def tree(root, skip=None):
    """Every path under root (relative), except under skip."""
    out = set()
    for d, dirs, files in os.walk(root):
        if skip and (d == skip or d.startswith(skip + os.sep)):
            dirs[:] = []
            continue
        for n in dirs + files:
            p = os.path.join(d, n)
            if skip and (p == skip or p.startswith(skip + os.sep)):
                continue
            out.add(os.path.relpath(p, root))
    return out


def msg(tag):
    return (f"From: probe <probe@example.org>\nTo: u@home.com.bo\nSubject: {tag}\n"
            f"Message-ID: <{tag}@probe.test>\n\nbody {tag}\n").encode()


def stored(maildir, tag):
    """Paths under maildir whose content carries this tag."""
    out = []
    for d, _, files in os.walk(maildir):
        if os.path.basename(d) not in ("new", "cur"):
            continue
        for n in files:
            p = os.path.join(d, n)
            if f"Message-ID: <{tag}@probe.test>".encode() in open(p, "rb").read():
                out.append(p)
    return out


# ------------------------------------------------------------------ the LDA
def test_lda_refuses_root(tmp_path):
    md = tmp_path / "Maildir"
    for args in (["--maildir", str(md), "--no-sieve"], ["-d", "root", "--no-sieve"],
                 ["-d", "0", "--no-sieve"]):
        r = subprocess.run([DELIVER] + args, input=msg("root"), capture_output=True,
                           env=_env(), timeout=60)
        assert r.returncode in (67, 75, 77), (args, r.returncode, r.stderr)
        if args[0] != "-d" or args[1] == "root":
            assert b"root" in r.stderr, r.stderr
    assert not md.exists(), "the LDA running as root created the Maildir"
    # started as root with -d USER it switches to that user: nothing it
    # creates in the user's home belongs to root
    # (the user comes from passwd: this probe must not depend on a system
    # dovecot answering on /run/dovecot/auth-userdb, which a fresh host lacks)
    u = hmtest.make_user(prefix="hmr")
    conf = os.path.join(hmtest._workdir("rootconf"), "deliver.conf")
    with open(conf, "w") as f:
        f.write("userdb = passwd\n")
    os.chmod(conf, 0o644)
    r = subprocess.run([DELIVER, "--config", conf, "--no-sieve", "-d", u.name], input=msg("root2"),
                       capture_output=True, env=_env(), timeout=60)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert len(stored(u.maildir, "root2")) == 1, "exit 0 but the message is not in the Maildir"
    for p in tree(u.home):
        st = os.lstat(os.path.join(u.home, p))
        assert st.st_uid != 0, f"{p} in the user's home is owned by root"


@pytest.mark.parametrize("component", ["tmp", "new", "cur", ".Junk", ".Junk/new", "Maildir"])
def test_lda_refuses_symlinked_maildir_components(component):
    u = hmtest.make_user(prefix="hms")
    md = u.maildir
    # a normal first delivery creates the layout
    r = deliver_as(u, ["--maildir", md, "--no-sieve"], msg("setup"))
    assert r.returncode == 0, r.stderr
    r = deliver_as(u, ["--maildir", md, "--no-sieve", "-m", "Junk"], msg("setup2"))
    assert r.returncode == 0, r.stderr
    victim = os.path.join(u.home, "victim")
    os.makedirs(os.path.join(victim, "new"), exist_ok=True)
    os.makedirs(os.path.join(victim, "cur"), exist_ok=True)
    os.makedirs(os.path.join(victim, "tmp"), exist_ok=True)
    for d, _, _ in os.walk(u.home):
        os.chown(d, u.uid, u.gid)
    target = os.path.join(md, component)
    if component == "Maildir":
        # the Maildir path itself may be a symlink (admins do that); its
        # components may not: plant one below a symlinked root instead
        target = os.path.join(md, "new")
    shutil.rmtree(target)
    os.symlink(os.path.join(victim, "new") if component.endswith("new")
               else victim if component.startswith(".") else os.path.join(victim, component),
               target)
    before = tree(victim)
    args = ["--maildir", md, "--no-sieve"] + (["-m", "Junk"] if "Junk" in component else [])
    r = deliver_as(u, args, msg(f"sym-{component}"))
    after = tree(victim)
    assert after == before, f"wrote through a symlinked {component}: {after - before}"
    if r.returncode == 0:
        # only acceptable when the message went somewhere real (INBOX fallback)
        real = [p for p in stored(md, f"sym-{component}")
                if not os.path.islink(os.path.dirname(p))]
        assert real, f"exit 0 but the message is nowhere: {r.stderr}"
    else:
        assert r.returncode == 75, (r.returncode, r.stderr)


BAD_FOLDERS = [
    "../../escape", "..", ".", "../", "a/../../b", "/etc/escape", "INBOX/../../x",
    "x/..", "..\\..\\x", "a\nb", "\u202e..", "&Li4-/x", ".hidden/../..", "~/x",
    "Junk/../../../tmp/x",
]


def _sieve_quote(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')


def test_fileinto_cannot_leave_maildir(tmp_path):
    u = hmtest.make_user(prefix="hmi")
    md = u.maildir
    r = deliver_as(u, ["--maildir", md, "--no-sieve"], msg("init"))
    assert r.returncode == 0, r.stderr
    outside_before = tree(u.home, skip=md) | {"/tmp:" + n for n in os.listdir("/tmp")}
    problems = []
    cases = [("fileinto", f) for f in BAD_FOLDERS] + [
        ("var", "${a}${b}escape"), ("hex", "${hex:2e 2e 2f 2e 2e 2f}esc"),
        ("m", "../../escape-m"), ("m", "/tmp/escape-m")]
    for i, (kind, folder) in enumerate(cases):
        tag = f"fi{i}"
        script = os.path.join(u.home, f"s{i}.sieve")
        if kind == "fileinto":
            text = f'require "fileinto";\nfileinto "{_sieve_quote(folder)}";\n'
        elif kind == "var":
            text = ('require ["fileinto", "variables"];\nset "a" "../";\nset "b" "../";\n'
                    f'fileinto "{folder}";\n')
        elif kind == "hex":
            text = f'require ["fileinto", "encoded-character"];\nfileinto "{folder}";\n'
        else:
            text = ""
        with open(script, "w") as f:
            f.write(text)
        os.chown(script, u.uid, u.gid)
        args = ["--maildir", md, "--sieve", script]
        if kind == "m":
            args = ["--maildir", md, "--no-sieve", "-m", folder]
        r = deliver_as(u, args, msg(tag))
        where = stored(md, tag)
        if r.returncode != 0:
            problems.append(f"{kind} {folder!r}: exit {r.returncode} (mail must land in INBOX) "
                            f"{r.stderr[-200:]!r}")
        elif len(where) != 1:
            problems.append(f"{kind} {folder!r}: stored {len(where)} times: {where}")
        for p in where:
            rel = os.path.relpath(p, md)
            if rel.startswith("..") or "/../" in p:
                problems.append(f"{kind} {folder!r}: stored outside the Maildir: {p}")
    outside_after = tree(u.home, skip=md) | {"/tmp:" + n for n in os.listdir("/tmp")}
    created = {p for p in outside_after - outside_before
               if "escape" in p or "esc" in p or "x" == os.path.basename(p)}
    assert not created, f"fileinto created files outside the Maildir: {created}"
    # every folder directory is a single Maildir++ level inside the Maildir
    for n in os.listdir(md):
        p = os.path.join(md, n)
        if n.startswith(".") and os.path.isdir(p):
            assert "/" not in n and n not in (".", "..") and not os.path.islink(p), n
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ SMTP / IMAP / POP3
def _ehlo(port, source, starttls=False):
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as s:
        s.ehlo("outside.example")
        if starttls:
            s.starttls(context=hmtest.client_tls_context())
            s.ehlo("outside.example")
        return s.esmtp_features


def test_no_auth_without_tls():
    """Against the configuration the package installs (Debian's exim4 conf.d
    with homemail's snippets, homemail's dovecot snippet): without them
    there is no AUTH after STARTTLS either, and this fails."""
    u = hmtest.make_user(prefix="hma")
    d = hmtest.PackageDovecot(None, users=[u]).start()
    e = hmtest.PackageExim(d, user_check=True)
    try:
        e.start()
        for src in (OUTSIDE, "127.0.0.1"):
            feats = _ehlo(e.smtp_port, src)
            assert "starttls" in feats, feats
            assert "auth" not in feats, f"AUTH offered in clear to {src}: {feats}"
            # and AUTH sent anyway is refused in clear
            with smtplib.SMTP("127.0.0.1", e.smtp_port, source_address=(src, 0), timeout=30) as s:
                s.ehlo("outside.example")
                code, _ = s.docmd("AUTH", "PLAIN AGhtAHBhc3M=")
                assert code >= 500, code
        feats = _ehlo(e.smtp_port, OUTSIDE, starttls=True)
        assert "PLAIN" in feats.get("auth", ""), feats
        # and it is the package's authenticator, answered by Dovecot
        with smtplib.SMTP("127.0.0.1", e.smtp_port, source_address=(OUTSIDE, 0), timeout=30) as s:
            s.starttls(context=hmtest.client_tls_context())
            s.login(u.name, u.password)
        # dovecot: no plaintext login before TLS from an outside address
        c = imaplib.IMAP4("127.0.0.1", d.imap_port)
        c.sock.close()
        import socket
        s = socket.create_connection(("127.0.0.1", d.imap_port), timeout=10,
                                     source_address=(OUTSIDE, 0))
        greet = s.recv(4096).decode()
        assert "LOGINDISABLED" in greet, greet
        s.sendall(f"a LOGIN {u.name} {u.password}\r\n".encode())
        reply = s.recv(4096).decode()
        assert re.search(r"^a (NO|BAD)|^\* BYE", reply, re.M), reply
        assert not re.search(r"^a OK", reply, re.M), reply
        s.close()
        s = socket.create_connection(("127.0.0.1", d.pop3_port), timeout=10,
                                     source_address=(OUTSIDE, 0))
        s.recv(4096)
        s.sendall(f"USER {u.name}\r\n".encode())
        reply = s.recv(4096).decode()
        if reply.startswith("+OK"):
            s.sendall(f"PASS {u.password}\r\n".encode())
            reply = s.recv(4096).decode()
        assert reply.startswith("-ERR"), reply
        s.close()
        # over TLS the same login works (the refusal above is about TLS, not the password)
        d.imap(u).logout()
    finally:
        e.stop()
        d.stop()


RELAY_TRICKS = [
    "victim@outside.example",
    "victim%outside.example@home.com.bo",
    "outside.example!victim@home.com.bo",
    "@home.com.bo:victim@outside.example",
    '"victim@outside.example"@home.com.bo',
    "victim@outside.example@home.com.bo",
    "victim@outside.example.",
    "victim@[192.0.2.1]",
    "postmaster@outside.example",
]


def test_no_open_relay():
    """Against the configuration the package installs (see above); the
    userdb check at RCPT is off (it needs homemail's auth backend), so the
    package's routing check refuses unknown users."""
    u = hmtest.make_user(prefix="hmo")
    e = hmtest.PackageExim(None, user_check=False)
    try:
        e.start()
        accepted = []
        for rcpt in RELAY_TRICKS:
            with smtplib.SMTP("127.0.0.1", e.smtp_port, source_address=(OUTSIDE, 0),
                              timeout=30) as s:
                s.ehlo("outside.example")
                s.mail("spammer@outside.example")
                code, text = s.rcpt(rcpt)
                if code < 400:
                    accepted.append((rcpt, code))
                    s.data(msg("relay"))
        e.queue_run()
        time.sleep(0.5)
        out = e.outbox_messages()
        assert not out, f"relayed {len(out)} message(s) to the outside"
        # an address with a local-looking domain that Exim still routes to a
        # local user is not a relay; anything else accepted is
        for rcpt, code in accepted:
            assert rcpt.endswith("@home.com.bo"), f"RCPT {rcpt} accepted ({code}) from outside"
        # a local user is reachable from outside (the probe itself is sound)
        hmtest.send(e.smtp_port, "a@outside.example", [u.address], msg("ok-local"),
                    source=OUTSIDE)
        # ... and delivered by the package's transport (homemail-deliver)
        hmtest.wait_for(lambda: stored(u.maildir, "ok-local"), 30, 0.1,
                        "the local message in the user's Maildir")
        assert re.search(r" T=homemail$", e.mainlog(), re.M), e.log_tail()
    finally:
        e.stop()


def test_unknown_recipient_refused_at_rcpt():
    """The package's whole RCPT path: its ACL asks homemail_scan.so's
    homemail_user_exists over Dovecot's auth-exim-master socket, answered by
    the package's auth backend (libauthdb_homemail.so: system accounts of
    group users as name@domain), then routing.  root@ tells the two apart:
    routing alone finds root (and the delivery would fail and bounce), the
    auth backend never serves uid 0."""
    u = hmtest.make_user(prefix="hmu")
    d = hmtest.PackageDovecot(None, users=[u], auth_backend=True).start()
    e = hmtest.PackageExim(d, user_check=True)
    try:
        e.start()
        codes = {}
        with smtplib.SMTP("127.0.0.1", e.smtp_port, source_address=(OUTSIDE, 0),
                          timeout=30) as s:
            s.ehlo("outside.example")
            s.mail("a@outside.example")
            for r in (u.address, "nosuchuser7@home.com.bo", "root@home.com.bo",
                      "NoSuchUser7@HOME.COM.BO", f"{u.name}+x@home.com.bo"):
                codes[r] = s.rcpt(r)[0]
        assert codes[u.address] == 250, codes
        assert codes["nosuchuser7@home.com.bo"] == 550, codes
        assert codes["NoSuchUser7@HOME.COM.BO"] == 550, codes
        # root is no mail account: refused now, not accepted and bounced later
        assert codes["root@home.com.bo"] == 550, codes
        # plus-addressing (docs/domains.md): user+x reaches user
        assert codes[f"{u.name}+x@home.com.bo"] == 250, codes
        # nothing was queued, so no bounce can ever be generated
        assert e.queue_count() == 0
        assert not e.outbox_messages()
        assert not hmtest.sanitizer_reports(e.env), hmtest.sanitizer_reports(e.env)
    finally:
        e.stop()
        d.stop()


# ------------------------------------------------------------------ lockout
def test_lockout_holds_under_parallel_attempts():
    """40 wrong passwords at once from 40 addresses (so only the per-user
    counter applies): at most max_failures=5 of them get a real password
    check (the attempt is counted under the file lock before the password is
    verified), every other one is refused by the lock, and afterwards the
    right password is refused too.

    A "real password check" is an attempt whose password check decides the
    answer: the module logs it as "refused: password mismatch"; an attempt
    refused by the lock is logged as "refused: user locked out" (it still
    spends one crypt, but its result never reaches the reply).  Every one of
    the 40 attempts must show up as exactly one of the two, so a line lost
    or not yet written cannot make the bound pass."""
    u = hmtest.make_user(prefix="hml")
    w = hmtest._workdir("lockprobe")
    users_path = os.path.join(w, "users")
    with open(users_path, "w") as f:
        f.write("# none\n")
    os.chmod(users_path, 0o600)
    lockout = os.path.join(w, "state", "lockout.db")
    mod = hmtest._workdir("authmod")
    shutil.copy2(AUTH_SO, os.path.join(mod, "libauthdb_homemail.so"))
    max_failures, n = 5, 40
    args = (f"users={users_path} lockout={lockout} domains=home.com.bo "
            f"max_failures={max_failures} lock_time=600 ip_max_failures=1000 backoff_after=0")
    d = hmtest.Dovecot(None, users=[u],
                       passdb_conf="passdb {\n  driver = homemail\n  args = %s\n}" % args,
                       userdb_conf="userdb {\n  driver = homemail\n  args = %s\n}" % args,
                       auth_module_dir=mod, auth_failure_delay="0",
                       extra_conf="auth_verbose = yes\n" + hmtest.sanitizer_dovecot_conf(),
                       env=hmtest.sanitizer_env()).start()
    try:
        ok = d.doveadm("auth", "test", "-x", "rip=127.9.0.1", u.name, u.password)
        assert ok.returncode == 0, ok.stdout + ok.stderr + d.log()

        def attempt(i):
            r = d.doveadm("auth", "test", "-x", "no-penalty=1", "-x", f"rip=127.9.1.{i + 1}",
                          u.name, f"wrong-{i}")
            return r.returncode

        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
            rcs = list(ex.map(attempt, range(n)))
        assert all(rc != 0 for rc in rcs), rcs
        r = d.doveadm("auth", "test", "-x", "rip=127.9.2.1", u.name, u.password)
        assert r.returncode != 0, "the right password was accepted after 40 parallel failures"

        name = re.escape(u.name)
        mism = re.compile(rf"login {name} from 127\.9\.1\.\d+ refused: password mismatch")
        refd = re.compile(rf"login {name} from 127\.9\.1\.\d+ refused: user locked out")
        # the log process writes asynchronously: wait until every attempt is there
        end = time.monotonic() + 20
        while True:
            log = d.log()
            checks, refused = len(mism.findall(log)), len(refd.findall(log))
            if checks + refused >= n or time.monotonic() > end:
                break
            time.sleep(0.2)
        assert checks + refused == n, (checks, refused, log[-3000:])
        assert re.search(rf"login {name} from 127\.9\.2\.1 refused: user locked out "
                         rf"for \d+ more s \(password was right\)", log), log[-2000:]
        assert re.search(rf"{name} now user locked out for \d+ s", log), log[-2000:]
        st = os.stat(lockout)
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0, oct(st.st_mode)
        with open(os.path.join(hmtest.BUILD_TREE, "harden-probes-summary.txt"), "a") as f:
            f.write(f"lockout: {n} parallel wrong passwords, {checks} real password checks "
                    f"(max_failures={max_failures}), {refused} refused by the lock, right "
                    f"password refused after\n")
        # every attempt beyond max_failures must be refused without a deciding
        # check (the attempt is counted in the same locked step as the check),
        # and the lock is not set early: exactly max_failures were checked
        assert checks == max_failures, \
            f"{checks} real password checks for max_failures={max_failures} ({refused} refused)"
    finally:
        d.stop()


# ------------------------------------------------------------------ modes
def _mode(p):
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_file_and_socket_modes(tmp_path):
    u = hmtest.make_user(prefix="hmm")
    md = u.maildir
    r = deliver_as(u, ["--maildir", md, "--no-sieve"], msg("m1"))
    assert r.returncode == 0, r.stderr
    r = deliver_as(u, ["--maildir", md, "--no-sieve", "-m", "Archive.2026"], msg("m2"))
    assert r.returncode == 0, r.stderr
    bad = []
    for d, dirs, files in os.walk(md):
        for n in dirs:
            p = os.path.join(d, n)
            if _mode(p) != 0o700:
                bad.append(f"{p}: {oct(_mode(p))} (want 0700)")
        for n in files:
            p = os.path.join(d, n)
            if _mode(p) & 0o077:
                bad.append(f"{p}: {oct(_mode(p))} (group/other access)")
            if os.lstat(p).st_uid != u.uid:
                bad.append(f"{p}: owned by uid {os.lstat(p).st_uid}")
    if _mode(md) != 0o700:
        bad.append(f"{md}: {oct(_mode(md))}")
    assert os.path.exists(os.path.join(md, ".Archive.2026", "maildirfolder"))
    assert not bad, "\n".join(bad)

    # homemail-user writes the users file root-only
    users = tmp_path / "users"
    r = subprocess.run([HMUSER, "--users", str(users), "add", "probe@home.com.bo",
                        "--password-stdin", "--home", str(tmp_path / "vhome"),
                        "--uid", str(u.uid), "--gid", str(u.gid)],
                       input="Probe-pw-1\n", capture_output=True, text=True, timeout=60)
    if r.returncode == 0:
        assert _mode(users) == 0o600 and os.stat(users).st_uid == 0, oct(_mode(users))
        assert "Probe-pw-1" not in users.read_text()
    else:
        pytest.fail(f"homemail-user add failed: {r.stdout}{r.stderr}")

    # the built artefacts (the checkout's, not the harness's staged copies):
    # no set-id bits, nothing group/world-writable
    for n in os.listdir(hmtest.BUILD_TREE):
        p = os.path.join(hmtest.BUILD_TREE, n)
        if os.path.isfile(p) and (n.endswith(".so") or n.startswith("homemail-")):
            m = _mode(p)
            assert not m & (stat.S_ISUID | stat.S_ISGID | 0o022), f"{p}: {oct(m)}"

    # dovecot's sockets: the master listener is root-only, auth-userdb 0666
    # (it answers only about the caller's own uid)
    d = hmtest.Dovecot(None, users=[u]).start()
    try:
        assert _mode(d.auth_master_socket) == 0o600
        assert os.stat(d.auth_master_socket).st_uid == 0
        assert _mode(d.auth_userdb_socket) == 0o666
    finally:
        d.stop()
