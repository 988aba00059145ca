"""test_replication.py — two mail hosts kept in sync by Dovecot's replicator
(issue 18, docs/replication.md), each in its own network namespace, running
what ansible/render.yml renders for inventories/pair (hm_pair.py).

Guards: homemail-deliver's notification of the replicator (without it a
delivered message reaches the peer only at the next full sync, an hour
away: the A->B wait fails); the aggregator fifo's permissions (the mail
accounts' group can write, others not); the rendered replication settings
(peer, TLS, shared secret) being enough for dsync both ways; convergence
after a host dies mid-run; the documented outcome of a conflicting change.
"""
import os
import re
import subprocess
import time

import pytest

import hm_pair
import hmtest

N = int(os.environ.get("HM_PAIR_N", "100"))
WAIT = 120     # a bound on waiting, not a timing assertion (timing: bench/replication);
               # two dsyncs of one user can wait on each other's lock (-l 30)


@pytest.fixture(scope="module")
def pair():
    u = hmtest.make_user()
    p = hm_pair.Pair([u], backup=True, auth_backend=True)
    p.user = u
    yield p
    p.close()


def test_notify_fifo_permissions(pair):
    """The fifo Dovecot created from the rendered listener: the mail
    accounts' group may write, nobody else may open it."""
    import grp
    import stat
    fifo = os.path.join(pair.a.dovecot.base_dir, "replication-notify-fifo")
    st = os.stat(fifo)
    assert stat.S_ISFIFO(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o620, oct(st.st_mode)
    assert st.st_gid == grp.getgrnam("users").gr_gid
    probe = ["/usr/bin/python3", "-c", "import os,sys; os.open(sys.argv[1], os.O_WRONLY|os.O_NONBLOCK)",
             fifo]
    ok = hmtest.as_user(pair.user, probe, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
                       + probe, capture_output=True, text=True)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    # virtual accounts' owner (vmail, not in `users`): refused by the first
    # fifo, let in by the second (homemail-deliver's replication_notify_virtual)
    vfifo = os.path.join(pair.a.dovecot.base_dir, "replication-notify-fifo-virtual")
    st = os.stat(vfifo)
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620, oct(st.st_mode)
    assert st.st_gid == grp.getgrnam("vmail").gr_gid
    conf = open(pair.a.deliver_conf).read()
    assert re.search(r"(?m)^replication_notify_virtual = \S+/replication-notify-fifo-virtual$",
                     conf), conf
    as_vmail = ["setpriv", "--reuid=nobody", "--regid=vmail", "--clear-groups", "--"]
    r = subprocess.run(as_vmail + probe, capture_output=True, text=True)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    r = subprocess.run(as_vmail + probe[:-1] + [vfifo], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
                       + probe[:-1] + [vfifo], capture_output=True, text=True)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r


def test_lockout_budget_shared(pair):
    """Each of the two hosts gets half the lockout budget (docs/replication.md):
    the account database arguments render.yml made for each host."""
    for h in (pair.a, pair.b):
        args = open(os.path.join(h.rendered, "dovecot-authdb.conf")).read()
        assert re.search(r"^args = .* max_failures=5 ip_max_failures=25 backoff_after=3$",
                         args, re.M), args


def test_a_to_b_all_present_identical(pair):
    """N messages over SMTP to A, read over IMAP on B: all there once,
    byte-identical to A's copy; the delay is printed (bench/ measures it)."""
    u = pair.user
    w = hm_pair.Watcher(pair.b.dovecot, u).start()
    accepted = {}
    for i in range(N):
        mid = f"ab-{i}@pair.test"
        accepted[mid] = hm_pair.smtp_send(pair.a, u.address, hm_pair.message(i, "ab"))
    try:
        hm_pair.wait_until(lambda: all(m in w.seen for m in accepted) or w.error, WAIT,
                           f"{N} messages on B")
    except TimeoutError:
        raise AssertionError(
            f"{len(w.seen)} of {N} on B; watcher: {w.error!r} {w.reconnects} {w.last_uid}\n"
            f"A has {len(hm_pair.fetch_all(pair.a.dovecot, u))}, "
            f"B has {len(hm_pair.fetch_all(pair.b.dovecot, u))}\n"
            + pair.a.dovecot.replicator("status", u.name).stdout
            + pair.b.dovecot.replicator("status", u.name).stdout
            + "\n".join(ln for ln in (pair.a.dovecot.log() + pair.b.dovecot.log()).splitlines()[-80:]
                        if "Warning" not in ln)
            + pair.a.exim.log_tail(10)) from None
    finally:
        w.stop()
    on_a = hm_pair.fetch_all(pair.a.dovecot, u)
    on_b = hm_pair.fetch_all(pair.b.dovecot, u)
    for mid in accepted:
        assert len(on_a.get(mid, [])) == 1, mid
        assert len(on_b.get(mid, [])) == 1, mid
        assert on_a[mid][0] == on_b[mid][0], mid
        assert b"message " in on_b[mid][0]
    delays = [w.seen[m] - accepted[m] for m in accepted]
    print(f"\nreplication delay A->B over {N}: median {hm_pair.percentile(delays, 50):.3f} s, "
          f"p99 {hm_pair.percentile(delays, 99):.3f} s")


SIEVE = 'require "fileinto";\nif header :contains "subject" "only-the-sieve-test" { fileinto "Projects"; }\n'


def _flags(dovecot, user, mid, folder="INBOX"):
    c = dovecot.imap(user)
    c.select(f'"{folder}"', readonly=True)
    typ, data = c.search(None, "HEADER", "Message-ID", f"<{mid}>")
    ids = data[0].split()
    out = None
    if ids:
        typ, d = c.fetch(ids[0], "(FLAGS)")
        out = set(re.search(rb"FLAGS \(([^)]*)\)", d[0]).group(1).decode().split())
    c.logout()
    return out


def _folders(dovecot, user):
    c = dovecot.imap(user)
    typ, data = c.list()
    c.logout()
    return {ln.decode().rsplit(" ", 1)[-1].strip('"') for ln in data if ln}


def test_b_changes_reach_a(pair):
    """Flags and a keyword, folder creation and deletion, a move into Junk
    done over IMAP on B, and a Sieve script uploaded (and activated) on B,
    all appear on A."""
    u = pair.user
    mids = [f"ba-{i}@pair.test" for i in range(3)]
    for i in range(3):
        # the one moved into Junk from its own sender: the move blocks its
        # sender on both hosts (junk plugin), the other tests' is alice
        sender = "ba-junk@pair.test" if i == 1 else "alice@pair.test"
        hm_pair.smtp_send(pair.a, u.address, hm_pair.message(i, "ba").replace(
            "From: alice@pair.test", f"From: {sender}"), sender=sender)
    hm_pair.wait_until(lambda: all(_flags(pair.b.dovecot, u, m) is not None for m in mids),
                       WAIT, "the three messages on B")
    # Sieve on B (ManageSieve's storage; dsync carries it with the doveadm
    # sieve plugin at the user's next sync, which the IMAP changes cause)
    r = pair.b.dovecot.doveadm("sieve", "put", "-u", u.name, "-a", "pair", input=SIEVE)
    assert r.returncode == 0, r.stderr
    c = pair.b.dovecot.imap(u)
    c.create("Projects")
    c.create("Old")
    c.create("Junk")
    c.select("INBOX")
    typ, data = c.search(None, "HEADER", "Message-ID", f"<{mids[0]}>")
    c.store(data[0].split()[0], "+FLAGS", "(\\Flagged Work)")
    typ, data = c.search(None, "HEADER", "Message-ID", f"<{mids[1]}>")
    typ, resp = c._simple_command("MOVE", data[0].split()[0].decode(), "Junk")
    assert typ == "OK", resp
    c.logout()
    hm_pair.wait_until(lambda: "Old" in _folders(pair.a.dovecot, u), WAIT, "Old on A")
    c = pair.b.dovecot.imap(u)
    assert c.delete("Old")[0] == "OK"
    c.logout()

    def converged():
        fa = _folders(pair.a.dovecot, u)
        return ("Projects" in fa and "Junk" in fa and "Old" not in fa
                and (_flags(pair.a.dovecot, u, mids[0]) or set()) >= {"\\Flagged", "Work"}
                and _flags(pair.a.dovecot, u, mids[1]) is None
                and _flags(pair.a.dovecot, u, mids[1], "Junk") is not None
                and "pair ACTIVE" in pair.a.dovecot.doveadm("sieve", "list", "-u",
                                                            u.name).stdout)
    hm_pair.wait_until(converged, WAIT, "B's changes on A")
    # what homemail-deliver on A runs: ~/.dovecot.sieve, the active script
    home_a = os.path.join(pair.a.dovecot.homes, u.name)
    with open(os.path.join(home_a, ".dovecot.sieve")) as f:
        assert f.read() == SIEVE


def _diag(pair):
    u = pair.user
    out = ""
    for h in (pair.a, pair.b):
        out += f"{h.name}: {hm_pair.replicator_state(h.dovecot, u.name)}\n"
        out += "\n".join(ln for ln in h.dovecot.log().splitlines()[-30:]
                         if "Warning: " not in ln and "imap" not in ln) + "\n"
    return out + pair.a.exim.log_tail(6)


def _mids(dovecot, user, prefix):
    """{Message-ID: count} of every folder's messages with that prefix."""
    out = {}
    for folder in _folders(dovecot, user):
        for mid, copies in hm_pair.fetch_all(dovecot, user, folder).items():
            if mid.startswith(prefix):
                out[mid] = out.get(mid, 0) + len(copies)
    return out


def test_partition_conflict_expunge_wins(pair):
    """During a partition a flag is set on A and the same message is deleted
    (expunged) on B; after the link returns both hosts agree on the
    documented outcome (docs/replication.md): the expunge wins, the message
    is gone on both, and the other messages keep their flags.  (Runs before
    the crash test: a host that lost its replicator state cannot tell an
    expunge from a message the peer never had, and brings it back.)"""
    u = pair.user
    for i in range(2):
        hm_pair.smtp_send(pair.a, u.address, hm_pair.message(i, "conflict"))
    x, y = "conflict-0@pair.test", "conflict-1@pair.test"
    try:
        hm_pair.wait_until(lambda: _flags(pair.b.dovecot, u, x) is not None
                           and _flags(pair.b.dovecot, u, y) is not None, WAIT, "both on B")
    except TimeoutError:
        raise AssertionError(_diag(pair)) from None
    pair.wait_synced(timeout=WAIT)
    hm_pair.partition(pair.a.host, pair.b.host)
    try:
        c = pair.a.dovecot.imap(u)
        c.select("INBOX")
        for mid, flag in ((x, "\\Flagged"), (y, "\\Answered")):
            typ, data = c.search(None, "HEADER", "Message-ID", f"<{mid}>")
            c.store(data[0].split()[0], "+FLAGS", f"({flag})")
        c.logout()
        c = pair.b.dovecot.imap(u)
        c.select("INBOX")
        typ, data = c.search(None, "HEADER", "Message-ID", f"<{x}>")
        c.store(data[0].split()[0], "+FLAGS", "(\\Deleted)")
        c.expunge()
        c.logout()
    finally:
        hm_pair.partition(pair.a.host, pair.b.host, on=False)
    pair.wait_synced(timeout=WAIT)
    try:
        hm_pair.wait_until(lambda: all(_flags(h.dovecot, u, x) is None
                                       and "\\Answered" in (_flags(h.dovecot, u, y) or ())
                                       for h in (pair.a, pair.b)),
                           WAIT, "the expunge on both hosts, y's flag on both")
    except TimeoutError:
        raise AssertionError(f"x: A {_flags(pair.a.dovecot, u, x)} B {_flags(pair.b.dovecot, u, x)}"
                             f"; y: A {_flags(pair.a.dovecot, u, y)} B {_flags(pair.b.dovecot, u, y)}\n"
                             + pair.diag()) from None


def test_host_killed_mid_run_converges(pair):
    """A run split between both hosts; half way A's daemons get kill -9 and
    its link is cut, the rest goes to B (as a sending MTA would to the other
    MX); A comes back: every message exactly once on each host."""
    u = pair.user
    m = max(20, N // 2)
    accepted = []
    for i in range(m):
        if i == m // 2:
            pair.a.kill9()
            hm_pair.cut_link(pair.a.host)
        target = pair.a if (i % 2 == 0 and pair.a.exim.proc is not None) else pair.b
        hm_pair.smtp_send(target, u.address, hm_pair.message(i, "crash"))
        accepted.append(f"crash-{i}@pair.test")
    hm_pair.restore_link(pair.a.host)
    pair.a.restart()
    pair.wait_synced(timeout=WAIT)

    def exact():
        return all(_mids(h.dovecot, u, "crash-") == {mid: 1 for mid in accepted}
                   for h in (pair.a, pair.b))
    try:
        hm_pair.wait_until(exact, WAIT, "every message exactly once on both hosts", 0.5)
    except TimeoutError:
        got = {h.name: _mids(h.dovecot, u, "crash-") for h in (pair.a, pair.b)}
        lost = {k: [x for x in accepted if x not in v] for k, v in got.items()}
        dup = {k: [x for x, n in v.items() if n > 1] for k, v in got.items()}
        raise AssertionError(f"lost {lost} duplicated {dup}") from None


def test_backup_mx_queues_then_drains(pair):
    """Both mail hosts' Exims down: the backup MX (its rendered backup-mode
    Exim) accepts for an existing address, refuses an unknown one with 550
    at RCPT (asked of its Dovecot auth: the same account database), queues;
    A's Exim returns: the queue drains into A (read over IMAP there), and
    replication brings the message to B."""
    import smtplib
    u = pair.user
    bk = pair.backup
    for h in (pair.a, pair.b):
        h.exim.stop()
    try:
        with smtplib.SMTP(bk.host.addr, bk.exim.smtp_port, timeout=30) as s:
            s.ehlo("sender.pair.test")
            assert s.mail("alice@pair.test")[0] == 250
            code, msg = s.rcpt(f"nobody-such-{u.name}@{hmtest.MAIL_DOMAIN}")
            assert code == 550, (code, msg, bk.exim.log_tail(10))
            code, msg = s.rcpt(u.address)
            assert code == 250, (code, msg, bk.exim.log_tail(10))
            code, msg = s.data(hm_pair.message(0, "backup"))
            assert code == 250, (code, msg)
        # queued: the delivery attempt found no mail host (connection refused)
        hm_pair.wait_until(lambda: re.search(r"(?m)^.*== " + re.escape(u.address)
                                             + r".*T=remote_smtp defer", bk.exim.mainlog()),
                           WAIT, "the backup MX's deferral")
        assert bk.exim.queue_count() == 1
        # no mail host got it
        for h in (pair.a, pair.b):
            assert _flags(h.dovecot, u, "backup-0@pair.test") is None
        pair.a.exim.start()
        bk.exim.queue_run()
        bk.exim.wait_queue_empty(WAIT)
        # A accepted it; its own delivery (homemail-deliver) follows
        hm_pair.wait_until(lambda: "backup-0@pair.test" in hm_pair.fetch_all(pair.a.dovecot, u),
                           WAIT, "the drained message on A over IMAP")
        hm_pair.wait_until(lambda: _flags(pair.b.dovecot, u, "backup-0@pair.test") is not None,
                           WAIT, "the drained message on B")
    finally:
        for h in (pair.a, pair.b):
            if h.exim.proc is None:
                h.exim.start()


def _junklist(dovecot, user):
    """{address: kind} of the user's list file on one host (homemail-deliver's input)."""
    p = os.path.join(dovecot.homes, user.name, "Maildir", "homemail-junklist")
    if not os.path.exists(p):
        return {}
    return {m.group(3): m.group(1) for m in
            re.finditer(r"(?m)^([BT]) (\d+) (\S+)$", open(p).read())}


def _move(dovecot, user, mid, src, dst):
    """IMAP MOVE of the message with Message-ID mid from src to dst."""
    c = dovecot.imap(user)
    c.select(f'"{src}"')
    typ, data = c.search(None, "HEADER", "Message-ID", f"<{mid}>")
    assert data[0].split(), f"{mid} not in {src}"
    typ, resp = c._simple_command("MOVE", data[0].split()[0].decode(), f'"{dst}"')
    c.logout()
    assert typ == "OK", resp


def _junk_diag(pair, u):
    out = f"\nA's list {_junklist(pair.a.dovecot, u)}\nB's list {_junklist(pair.b.dovecot, u)}\n"
    for h in (pair.a, pair.b):
        out += f"--- {h.name}: {hm_pair.replicator_state(h.dovecot, u.name)}\n" + "\n".join(
            ln for ln in h.dovecot.log().splitlines()
            if "homemail_junk" in ln or "doveadm(" in ln or "rror" in ln)[-3000:] + "\n"
    return out


def test_junk_lists_replicate(pair):
    """The junk sender lists (docs/junk.md, "Two hosts"): a sender blocked
    on B by an IMAP move into Junk is blocked on A too, and A's
    homemail-deliver files that sender's next message into Junk; moving it
    out of Junk on A trusts the sender on B, whose homemail-deliver then
    keeps its mail in INBOX.  Carried by the private INBOX attribute each
    host's junk plugin publishes and the peer's merges in dsync."""
    try:
        _junk_lists_replicate(pair)
    except TimeoutError as ex:
        raise AssertionError(str(ex) + _junk_diag(pair, pair.user)) from None


def _junk_lists_replicate(pair):
    u = pair.user
    x = "pitchman@pair.test"

    def mail(i):
        return hm_pair.message(i, "junkrep").replace("From: alice@pair.test", f"From: {x}")

    def mid(i):
        return f"junkrep-{i}@pair.test"

    def where(h, i):
        return [f for f in ("INBOX", "Junk") if _flags(h.dovecot, u, mid(i), f) is not None]

    if "Junk" not in _folders(pair.b.dovecot, u):
        c = pair.b.dovecot.imap(u)
        c.create("Junk")
        c.logout()
    hm_pair.smtp_send(pair.a, u.address, mail(0), sender=x)
    hm_pair.wait_until(lambda: where(pair.b, 0) == ["INBOX"] and "Junk" in
                       _folders(pair.a.dovecot, u), WAIT, "the first message and Junk on B")
    pair.wait_synced(timeout=WAIT)
    assert x not in _junklist(pair.a.dovecot, u) and x not in _junklist(pair.b.dovecot, u)

    # B: the user moves it into Junk -> blocked on B (the plugin), then on A
    _move(pair.b.dovecot, u, mid(0), "INBOX", "Junk")
    assert _junklist(pair.b.dovecot, u).get(x) == "B", _junk_diag(pair, u)
    try:
        hm_pair.wait_until(lambda: _junklist(pair.a.dovecot, u).get(x) == "B", WAIT,
                           "the sender blocked on A")
    except TimeoutError:
        raise AssertionError("not blocked on A" + _junk_diag(pair, u)) from None
    # A's homemail-deliver files the sender's next message into Junk
    hm_pair.smtp_send(pair.a, u.address, mail(1), sender=x)
    hm_pair.wait_until(lambda: where(pair.a, 1), WAIT, "the second message on A")
    assert where(pair.a, 1) == ["Junk"], _junk_diag(pair, u)

    # A: the user moves it out of Junk -> trusted on A, then on B, whose
    # homemail-deliver then keeps the sender's mail in INBOX
    hm_pair.wait_until(lambda: where(pair.b, 1) == ["Junk"], WAIT, "the second message on B")
    _move(pair.a.dovecot, u, mid(1), "Junk", "INBOX")
    assert _junklist(pair.a.dovecot, u).get(x) == "T", _junk_diag(pair, u)
    try:
        hm_pair.wait_until(lambda: _junklist(pair.b.dovecot, u).get(x) == "T", WAIT,
                           "the sender trusted on B")
    except TimeoutError:
        raise AssertionError("not trusted on B" + _junk_diag(pair, u)) from None
    hm_pair.smtp_send(pair.b, u.address, mail(2), sender=x)
    hm_pair.wait_until(lambda: where(pair.b, 2), WAIT, "the third message on B")
    assert where(pair.b, 2) == ["INBOX"], _junk_diag(pair, u)
    # after convergence both lists say the same about the sender
    pair.wait_synced(timeout=WAIT)
    assert _junklist(pair.a.dovecot, u).get(x) == _junklist(pair.b.dovecot, u).get(x) == "T"
    # SANITIZE=1: the plugin (IMAP publishing, doveadm merging) reported nothing
    for h in (pair.a, pair.b):
        assert not hmtest.sanitizer_reports(h.dovecot.env), hmtest.sanitizer_reports(h.dovecot.env)
