"""test_deliver_actions.py — homemail-deliver carries out the Sieve result
exactly once, and nothing else (issue 13, issue 14 items 3 and 8).

Each case runs the real homemail-deliver as the test user with a Sieve
script, a sendmail stand-in (HOMEMAIL_SENDMAIL) that records its argv and
input, and reads the Maildir back through a private dovecot's IMAP (folders,
counts, flags), never by file names.  The retry cases go through a private
exim whose pipe transport runs homemail-deliver, with real retries (-qff).

Guards against, by name:
  * plain redirect / redirect+discard leaving a copy in INBOX;
  * a redirect sendmail refused turned into a silent keep (dovecot-lda
    defers: 75) and a deferred delivery re-sending what it already sent;
  * an invalid folder name (leading '~', '/') carrying out the script's
    other actions, or creating ".~tilde";
  * Sieve `size` counting homemail's own fields;
  * a quoted local part split into several recipients by the sendmail call;
  * over-quota retries re-sending a redirect (3 runs -> 3 sends);
  * the userdb/config `sieve` location in Pigeonhole's syntax ignored;
  * HOMEMAIL_SENDMAIL honoured in a setuid run;
  * after.d scripts run after a user script that does not compile.
"""
import grp
import os
import re
import shutil
import subprocess

import hmtest
from test_deliver_e2e import write_conf

# HM_DELIVER: run the same cases against another build (e.g. the unfixed one)
LDA = os.environ.get("HM_DELIVER") or os.path.join(hmtest.BUILD, "homemail-deliver")

SENDMAIL = """#!/bin/sh
# sendmail stand-in: records argv (one per line) and stdin; exits with the
# code in fail.<last argument> when that file exists, else 0
d=%(dir)s
n=$(date +%%s%%N).$$
for a in "$@"; do printf '%%s\\n' "$a"; done > "$d/call.$n.argv"
cat > "$d/call.$n.in"
for a in "$@"; do last="$a"; done
if [ -f "$d/fail.$last" ]; then echo failed > "$d/call.$n.failed"; exit $(cat "$d/fail.$last"); fi
exit 0
"""


class Stand:
    """The sendmail stand-in and its record directory (world-writable)."""

    def __init__(self):
        self.dir = hmtest._workdir("sendmail")
        os.chmod(self.dir, 0o1777)
        self.path = os.path.join(self.dir, "sendmail")
        with open(self.path, "w") as f:
            f.write(SENDMAIL % {"dir": self.dir})
        os.chmod(self.path, 0o755)

    def calls(self, ok_only=True):
        """[(argv list, stdin bytes)] in call order."""
        out = []
        for n in sorted(x for x in os.listdir(self.dir) if x.endswith(".argv")):
            base = n[:-5]
            if ok_only and os.path.exists(os.path.join(self.dir, base + ".failed")):
                continue
            argv = open(os.path.join(self.dir, n)).read().split("\n")[:-1]
            data = open(os.path.join(self.dir, base + ".in"), "rb").read()
            out.append((argv, data))
        return out

    def targets(self):
        return [argv[-1] for argv, _ in self.calls()]

    def fail(self, target, code):
        p = os.path.join(self.dir, "fail." + target)
        if code is None:
            if os.path.exists(p):
                os.unlink(p)
        else:
            with open(p, "w") as f:
                f.write(str(code))


def put_script(user, text, name=".dovecot.sieve"):
    p = os.path.join(user.home, name)
    with open(p, "w") as f:
        f.write(text)
    os.chown(p, user.uid, user.gid)
    return p


def run_lda(user, stand, args, data, env=None):
    e = {"PATH": "/usr/bin:/bin", "HOME": user.home, "USER": user.name,
         "RECIPIENT": user.address, "HOMEMAIL_SENDMAIL": stand.path}
    e.update(env or {})
    return hmtest.as_user(user, ["env", "-i"] + [f"{k}={v}" for k, v in e.items()] + [LDA] + args,
                          input=data, capture_output=True, timeout=60)


def mailboxes(d, user):
    """{folder: [flags of each message]} as Dovecot's IMAP reports them."""
    c = d.imap(user)
    try:
        typ, data = c.list()
        assert typ == "OK", data
        names = []
        for line in data:
            m = re.match(rb'\(.*?\) (?:"."|NIL) (.*)$', line)
            n = m.group(1).decode()
            names.append(n[1:-1] if n.startswith('"') else n)
        out = {}
        for n in names:
            typ, data = c.select(f'"{n}"', readonly=True)
            assert typ == "OK", (n, data)
            cnt = int(data[0])
            flags = []
            if cnt:
                typ, fd = c.fetch(f"1:{cnt}", "(FLAGS)")
                for item in fd:
                    f = re.search(rb"FLAGS \(([^)]*)\)", item if isinstance(item, bytes) else item[0])
                    flags.append(sorted(x for x in f.group(1).decode().split() if x != "\\Recent"))
            out[n] = flags
        return out
    finally:
        c.logout()


MSG = hmtest.make_message(subject="for the rules", to="roberto@home.com.bo")


def fresh(user):
    """Empty the user's Maildir and state between cases."""
    shutil.rmtree(user.maildir, ignore_errors=True)


# ---------------------------------------------------------------------------
def test_redirect_cancels_keep_copy_keeps(user, dovecot_for):
    """RFC 5228 4.2: plain redirect cancels the implicit keep; redirect :copy
    keeps; redirect + discard keeps nothing.  Each redirect sent once."""
    d = dovecot_for([user])
    st = Stand()
    cases = [
        ('redirect "maria@example.net";', 0, ["maria@example.net"]),
        ('redirect "maria@example.net"; discard;', 0, ["maria@example.net"]),
        ('require "copy"; redirect :copy "maria@example.net";', 1, ["maria@example.net"]),
        ('require "fileinto"; redirect "maria@example.net"; fileinto "Fwd";', 0,
         ["maria@example.net"]),
    ]
    for script, inbox, sent in cases:
        fresh(user)
        for f in os.listdir(st.dir):
            if f.startswith("call."):
                os.unlink(os.path.join(st.dir, f))
        put_script(user, script)
        r = run_lda(user, st, ["-f", "alice@example.org"], MSG)
        assert r.returncode == 0, (script, r.stderr)
        mb = mailboxes(d, user)
        assert len(mb.get("INBOX", [])) == inbox, (script, mb)
        if "Fwd" in script:
            assert len(mb.get("Fwd", [])) == 1, (script, mb)
        assert st.targets() == sent, (script, st.calls())
        argv, data = st.calls()[0]
        assert argv[-2:] == ["--", "maria@example.net"] and "-f" in argv, argv
        assert argv[argv.index("-f") + 1] == "alice@example.org", argv
        assert b"Subject: for the rules" in data


def test_redirect_loop_marker_names_this_recipient_exactly(user, dovecot_for):
    """The loop marker stops a redirect only when it names this recipient:
    a marker for "<xana@...>" (which contains "ana@...") is another
    recipient's, and the forward is sent (before: a substring match kept the
    message and dropped the forward); the exact marker is a loop: kept."""
    d = dovecot_for([user])
    st = Stand()
    put_script(user, 'redirect "maria@example.net";')
    for marker, sent, inbox in ((f"<x{user.address}>", ["maria@example.net"], 0),
                                (f"<{user.address}x>", ["maria@example.net"], 0),
                                (f"x{user.address}", ["maria@example.net"], 0),
                                (f" <{user.address.upper()}> ", [], 1),
                                (user.address, [], 1)):
        fresh(user)
        for f in os.listdir(st.dir):
            if f.startswith("call."):
                os.unlink(os.path.join(st.dir, f))
        data = f"X-Sieve-Redirected-From: {marker}\r\n".encode() + MSG
        r = run_lda(user, st, ["-f", "alice@example.org"], data)
        assert r.returncode == 0, (marker, r.stderr)
        assert st.targets() == sent, (marker, st.calls(), r.stderr)
        assert len(mailboxes(d, user).get("INBOX", [])) == inbox, marker


def test_redirect_sendmail_failure_defers_and_retry_sends_once(user, dovecot_for):
    """sendmail refusing a redirect defers (75) as dovecot-lda does, with
    nothing left in the Maildir; the retry does not send again what the
    first attempt already sent (duplicate store), and delivers once."""
    d = dovecot_for([user])
    st = Stand()
    put_script(user, 'require ["copy","fileinto"]; redirect :copy "one@example.net"; '
                     'fileinto "Kept"; redirect :copy "two@example.net";')
    st.fail("two@example.net", 75)
    r = run_lda(user, st, ["-f", "alice@example.org"], MSG)
    assert r.returncode == 75, r.stderr
    mb = mailboxes(d, user)
    assert all(len(v) == 0 for v in mb.values()), f"copies left after a defer: {mb}"
    assert st.targets() == ["one@example.net"]
    st.fail("two@example.net", None)
    r = run_lda(user, st, ["-f", "alice@example.org"], MSG)       # Exim's retry
    assert r.returncode == 0, r.stderr
    assert sorted(st.targets()) == ["one@example.net", "two@example.net"], st.targets()
    mb = mailboxes(d, user)
    assert len(mb.get("Kept", [])) == 1 and len(mb.get("INBOX", [])) == 0, mb
    # a different message to the same target is sent (the key is the message)
    other = hmtest.make_message(subject="another one", to="roberto@home.com.bo")
    r = run_lda(user, st, ["-f", "alice@example.org"], other)
    assert r.returncode == 0, r.stderr
    assert st.targets().count("one@example.net") == 2, st.targets()


def test_invalid_folder_is_runtime_error_keep_only(user, dovecot_for):
    """A fileinto whose name Dovecot's Maildir++ refuses ('~' first, '/')
    is a run-time error as in Pigeonhole: none of the script's actions
    (other folders, flags, redirect) happen; one copy in INBOX, no flags."""
    d = dovecot_for([user])
    st = Stand()
    for bad in ("~tilde", "a/b"):
        fresh(user)
        put_script(user, 'require ["fileinto","imap4flags"]; addflag "\\\\Seen"; '
                         'fileinto "AfterInner"; redirect "x@example.net"; '
                         f'fileinto "{bad}"; fileinto "End";')
        r = run_lda(user, st, ["-f", "alice@example.org"], MSG)
        assert r.returncode == 0, r.stderr
        mb = mailboxes(d, user)
        assert {k: v for k, v in mb.items() if v} == {"INBOX": [[]]}, (bad, mb)
        assert not [n for n in os.listdir(user.maildir) if "tilde" in n or n in
                    (".AfterInner", ".End")], os.listdir(user.maildir)
        assert st.targets() == [], st.calls()
    # a run-time error the engine reports (more redirects than the limit
    # of 4): the same, whatever the result holds
    fresh(user)
    put_script(user, 'require ["fileinto","imap4flags"]; addflag "\\\\Seen"; fileinto "A"; ' +
               " ".join(f'redirect "r{i}@example.net";' for i in range(5)))
    r = run_lda(user, st, ["-f", "alice@example.org"], MSG)
    assert r.returncode == 0, r.stderr
    mb = mailboxes(d, user)
    assert {k: v for k, v in mb.items() if v} == {"INBOX": [[]]}, mb
    assert st.targets() == [], st.calls()


def test_fileinto_inbox_any_case_and_two_stores(user, dovecot_for):
    """fileinto "inbox" is INBOX (RFC 3501 5.1), never a folder "inbox";
    keep + fileinto into two folders with flags: each stored once."""
    d = dovecot_for([user])
    st = Stand()
    put_script(user, 'require ["fileinto","imap4flags"]; fileinto "inbox"; fileinto "InBoX"; '
                     'fileinto :flags "\\\\Flagged" "Work"; keep;')
    r = run_lda(user, st, ["-f", "alice@example.org"], MSG)
    assert r.returncode == 0, r.stderr
    mb = mailboxes(d, user)
    assert {k: v for k, v in mb.items() if v} == {"INBOX": [[]], "Work": [["\\Flagged"]]}, mb
    assert not [n for n in os.listdir(user.maildir) if n.lower() == ".inbox"]


def test_size_is_the_message_as_received(user, dovecot_for):
    """A 598-octet LF message is :over 597 and :under 599 (dovecot-lda)."""
    d = dovecot_for([user])
    st = Stand()
    head = b"From: a@example.org\nTo: r@home.com.bo\nSubject: size\nMessage-ID: <s@x>\n\n"
    msg = head + b"x" * (597 - len(head)) + b"\n"
    assert len(msg) == 598
    put_script(user, 'require "fileinto"; if size :over 597 { if size :under 599 '
                     '{ fileinto "Sized"; } }')
    r = run_lda(user, st, ["-f", "alice@example.org"], msg)
    assert r.returncode == 0, r.stderr
    mb = mailboxes(d, user)
    assert len(mb.get("Sized", [])) == 1, mb


def test_quoted_local_part_is_one_recipient(user, dovecot_for):
    """redirect to "a,b"@example.net: one argv recipient, and the real exim
    given that very call queues exactly that one address."""
    dovecot_for([user])
    st = Stand()
    put_script(user, 'redirect "\\"a,b\\"@example.net";')
    r = run_lda(user, st, ["-f", "alice@example.org"], MSG)
    assert r.returncode == 0, r.stderr
    calls = st.calls()
    assert len(calls) == 1, calls
    argv, data = calls[0]
    assert argv[-1] == '"a,b"@example.net', argv
    # replay the recorded call into a private exim (not started: -odq queues)
    e = hmtest.Exim(None)
    rr = e.exim(*(["-odq"] + argv), input=data, text=False)
    assert rr.returncode == 0, rr.stderr
    q = e.exim("-bp").stdout
    rcpts = [l.strip() for l in q.splitlines()[1:] if l.strip()]
    assert rcpts == ['"a,b"@example.net'], q


def test_sieve_location_pigeonhole_syntax(user, dovecot_for):
    """`sieve = file:~/sieve;active=~/x.sieve` runs ~/x.sieve; a bare path
    runs that file; an unsupported location is logged and keeps."""
    d = dovecot_for([user])
    st = Stand()
    os.makedirs(os.path.join(user.home, "sieve"), exist_ok=True)
    put_script(user, 'require "fileinto"; fileinto "ViaActive";', "x.sieve")
    put_script(user, 'require "fileinto"; fileinto "ViaBare";', "bare.sieve")
    for loc, folder in (("file:~/sieve;active=~/x.sieve", "ViaActive"),
                        ("~/bare.sieve", "ViaBare"), ("file:%h/bare.sieve", "ViaBare"),
                        ("ldap:whatever", "INBOX")):
        fresh(user)
        conf = write_conf(f"sieve = {loc}\n")
        r = run_lda(user, st, ["--config", conf, "-f", "alice@example.org"], MSG)
        assert r.returncode == 0, (loc, r.stderr)
        mb = mailboxes(d, user)
        assert len(mb.get(folder, [])) == 1, (loc, mb)


def test_user_script_compile_error_ends_the_sequence(user, dovecot_for):
    """A user script that does not compile: the before.d scripts have run,
    the after.d scripts do not run (dovecot-lda 0.5.19 with sieve_before /
    sieve_after does the same), and the message is kept in INBOX.  With no
    user script at all, the after.d scripts do run."""
    d = dovecot_for([user])
    st = Stand()
    base = hmtest._workdir("sievebase")
    for part, folder in (("before.d", "Before"), ("after.d", "After")):
        os.makedirs(os.path.join(base, part))
        with open(os.path.join(base, part, "x.sieve"), "w") as f:
            f.write(f'require ["fileinto","copy"]; fileinto :copy "{folder}";\n')
        os.chmod(os.path.join(base, part), 0o755)
        os.chmod(os.path.join(base, part, "x.sieve"), 0o644)
    os.chmod(base, 0o755)
    env = {"HOMEMAIL_SIEVE_GLOBAL_BASE": base}
    put_script(user, 'require "fileinto";\nfileinto "User" broken\n')
    r = run_lda(user, st, ["-f", "alice@example.org"], MSG, env)
    assert r.returncode == 0, r.stderr
    mb = mailboxes(d, user)
    assert {k: len(v) for k, v in mb.items() if v} == {"Before": 1, "INBOX": 1}, mb
    fresh(user)
    os.unlink(os.path.join(user.home, ".dovecot.sieve"))
    r = run_lda(user, st, ["-f", "alice@example.org"], MSG, env)
    assert r.returncode == 0, r.stderr
    mb = mailboxes(d, user)
    assert {k: len(v) for k, v in mb.items() if v} == {"Before": 1, "After": 1, "INBOX": 1}, mb


def test_setid_run_ignores_caller_overrides(user, dovecot_for):
    """Run setgid (real and effective gid differ: AT_SECURE), homemail-deliver
    ignores --config and HOMEMAIL_SIEVE_GLOBAL_BASE / HOMEMAIL_SENDMAIL
    (secure_getenv): a caller cannot point the privileged run at its own
    settings, scripts or programs.  Before the fix the caller's global
    script filed the message into "Hijacked", its --config moved the Maildir
    and its sendmail ran."""
    d = dovecot_for([user])
    st = Stand()
    w = hmtest._workdir("setid")
    os.chmod(w, 0o755)
    lda = os.path.join(w, "homemail-deliver")
    shutil.copy(LDA, lda)
    os.chown(lda, 0, grp.getgrnam("mail").gr_gid)
    os.chmod(lda, 0o2755)
    base = os.path.join(w, "sievebase")
    os.makedirs(os.path.join(base, "before.d"))
    with open(os.path.join(base, "before.d", "x.sieve"), "w") as f:
        f.write('require ["fileinto","copy"]; redirect :copy "evil@example.net"; '
                'fileinto "Hijacked";\n')
    for root, dirs, files in os.walk(base):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o755)
        for n in files:
            os.chmod(os.path.join(root, n), 0o644)
    os.chmod(base, 0o755)
    conf = write_conf("mail_location = maildir:~/HijackedMaildir\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": user.home, "USER": user.name,
           "RECIPIENT": user.address, "HOMEMAIL_SENDMAIL": st.path,
           "HOMEMAIL_SIEVE_GLOBAL_BASE": base}
    r = hmtest.as_user(user, ["env", "-i"] + [f"{k}={v}" for k, v in env.items()] +
                       [lda, "--config", conf, "-f", "alice@example.org"],
                       input=MSG, capture_output=True, timeout=60)
    # SANITIZE=1: LeakSanitizer cannot run in a setgid (non-dumpable)
    # process, nor read ASAN_OPTIONS from its /proc/self/environ, so its
    # end-of-run check fails after the delivery; only that failure is let by
    lsan_only = hmtest.SANITIZE and b"LeakSanitizer has encountered a fatal error" in r.stderr \
        and b"ERROR: AddressSanitizer" not in r.stderr and b"runtime error" not in r.stderr
    assert r.returncode == 0 or lsan_only, r.stderr
    assert not os.path.exists(os.path.join(user.home, "HijackedMaildir")), "--config honoured"
    assert st.calls(ok_only=False) == [], "HOMEMAIL_SENDMAIL was run in a setgid run"
    mb = mailboxes(d, user)
    assert {k: len(v) for k, v in mb.items() if v} == {"INBOX": 1}, mb
    assert b"--config ignored" in r.stderr, r.stderr


# ---------------------------------------------------------------------------
def _exim_for(user, st, conf):
    return hmtest.Exim(None, transport_command=f"{LDA} --config {conf}",
                       transport_extra=f"  environment = HOMEMAIL_SENDMAIL={st.path}")


def _retry_until_delivered(e, conf, unblock, runs=3):
    """Attempts while blocked (each a real exim delivery attempt), then the
    block lifted and one more forced run."""
    for _ in range(runs):
        e.queue_run()
    assert e.queue_count() == 1, "the message should be deferred\n" + e.mainlog()[-2000:]
    unblock()
    e.queue_run()
    hmtest.wait_for(lambda: e.queue_count() == 0, 30, 0.2, "delivery after the retry")


def _fill_quota(user, st, conf):
    r = run_lda(user, st, ["--config", conf, "--no-sieve", "-f", "x@example.org"],
                hmtest.make_message(subject="filler"))
    assert r.returncode == 0, r.stderr


def test_retry_over_quota_redirect_sent_once(user, dovecot_for):
    """redirect :copy, mailbox full (quota_full = tempfail): exim retries;
    the redirect goes out once, the message lands once."""
    d = dovecot_for([user])
    st = Stand()
    conf = write_conf("quota_rule = *:messages=1\nquota_full = tempfail\n")
    _fill_quota(user, st, conf)
    put_script(user, 'require "copy"; redirect :copy "maria@example.net";')
    e = _exim_for(user, st, conf)
    with e:
        m = hmtest.make_message(subject="over quota", to=user.address)
        assert hmtest.send(e.smtp_port, "alice@example.org", [user.address], m) == {}
        hmtest.wait_for(lambda: "== " in e.mainlog() or "=>" in e.mainlog(), 30, 0.2,
                        "first attempt")
        _retry_until_delivered(e, conf, lambda: open(conf, "w").write(
            "quota_rule = *:messages=10\nquota_full = tempfail\n"))
        log = e.mainlog()
    assert st.targets() == ["maria@example.net"], f"{st.targets()}\n{log[-2000:]}"
    mb = mailboxes(d, user)
    assert len(mb.get("INBOX", [])) == 2, mb


def test_retry_vacation_then_unwritable_mailbox_replies_once(user, dovecot_for):
    """vacation, then the store fails for a while (INBOX's new/ and cur/
    unwritable: 75): the reply goes out once over all attempts."""
    d = dovecot_for([user])
    st = Stand()
    conf = write_conf("")
    _fill_quota(user, st, conf)           # creates the Maildir
    put_script(user, 'require "vacation"; vacation :days 1 :subject "away" "back soon";')
    for sub in ("new", "cur"):
        os.chmod(os.path.join(user.maildir, sub), 0o500)
    e = _exim_for(user, st, conf)

    def unblock():
        for sub in ("new", "cur"):
            os.chmod(os.path.join(user.maildir, sub), 0o700)
    with e:
        m = hmtest.make_message(subject="are you there", sender="alice@example.org",
                                to=user.address)
        assert hmtest.send(e.smtp_port, "alice@example.org", [user.address], m) == {}
        hmtest.wait_for(lambda: "== " in e.mainlog() or "=>" in e.mainlog(), 30, 0.2,
                        "first attempt")
        _retry_until_delivered(e, conf, unblock)
        log = e.mainlog()
    assert st.targets() == ["alice@example.org"], f"{st.targets()}\n{log[-2000:]}"
    mb = mailboxes(d, user)
    assert len(mb.get("INBOX", [])) == 2, mb
