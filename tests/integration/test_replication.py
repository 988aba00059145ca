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
import subprocess
import time

import pytest

import hm_pair
import hmtest

N = int(os.environ.get("HM_PAIR_N", "100"))
WAIT = 60      # a bound on waiting, not a timing assertion (timing: bench/replication)


@pytest.fixture(scope="module")
def pair():
    u = hmtest.make_user()
    p = hm_pair.Pair([u])
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
