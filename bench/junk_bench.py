#!/usr/bin/python3
"""junk_bench.py — what the junk piece costs, against the stock pieces.

  IMAP  a private stock dovecot vs the same with lib90_homemail_junk_plugin.so:
        single-message UID MOVE into Junk (one transaction, one list rewrite
        with fsync each), and one UID MOVE of a whole batch back out.
  LDA   homemail-deliver --no-sieve with no list vs a 5000- and a
        50000-entry list (the junk check reads and searches it per message).

Prints medians and ratios (junk / stock).  Run as root: `bench/junk_bench.py`
(optional: N_MOVES, N_BATCH, N_DELIVER environment variables).
"""
import os
import socket
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import hmtest  # noqa: E402
from test_junk_plugin import junk_dovecot, msg  # noqa: E402

N_MOVES = int(os.environ.get("N_MOVES", "200"))
N_BATCH = int(os.environ.get("N_BATCH", "500"))
N_DELIVER = int(os.environ.get("N_DELIVER", "200"))


def dovecot_for(users, **kw):
    return hmtest.Dovecot(None, users=users, **kw).start()


def imap_round(d, user):
    """(median single MOVE seconds, seconds for one MOVE of N_BATCH back)"""
    c = d.imap(user)
    # imaplib writes a command in pieces: without NODELAY every command waits
    # ~40 ms for a delayed ACK and the plugin's cost disappears in the noise
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.create("Junk")
    for i in range(max(N_MOVES, N_BATCH)):
        c.append("INBOX", None, None, msg(f"sender{i}@bench.example", subject=f"b{i}"))
    c.select("INBOX")
    uids = c.uid("SEARCH", "ALL")[1][0].decode().split()
    times = []
    for u in uids[:N_MOVES]:
        t0 = time.perf_counter()
        typ, data = c.uid("MOVE", u, "Junk")
        times.append(time.perf_counter() - t0)
        assert typ == "OK"
    typ, data = c.select("Junk")
    in_junk = int(data[0])
    t0 = time.perf_counter()
    typ, _ = c.uid("MOVE", "1:*", "INBOX")
    back = time.perf_counter() - t0
    assert typ == "OK"
    c.logout()
    return statistics.median(times), (back, in_junk), min(times)


def bench_imap():
    u1, u2 = hmtest.make_user(), hmtest.make_user()
    stock = dovecot_for([u1])
    junk = junk_dovecot(dovecot_for, [u2])
    try:
        s_one, s_back, s_min = imap_round(stock, u1)
        j_one, j_back, j_min = imap_round(junk, u2)
    finally:
        stock.stop()
        junk.stop()
    lst = os.path.join(u2.maildir, "homemail-junklist")
    entries = sum(1 for l in open(lst) if not l.startswith("#"))
    print(f"IMAP single UID MOVE into Junk, median of {N_MOVES}: "
          f"stock {s_one * 1000:.2f} ms, junk {j_one * 1000:.2f} ms, "
          f"ratio {j_one / s_one:.2f}x; fastest: stock {s_min * 1000:.2f} ms, "
          f"junk {j_min * 1000:.2f} ms, ratio {j_min / s_min:.2f}x")
    print(f"IMAP one UID MOVE of {j_back[1]} messages out of Junk: "
          f"stock {s_back[0] * 1000:.1f} ms, junk {j_back[0] * 1000:.1f} ms, "
          f"ratio {j_back[0] / s_back[0]:.2f}x  (list then holds {entries} entries)")


def bench_deliver():
    user = hmtest.make_user()
    md = os.path.join(user.home, "Maildir")
    os.makedirs(md, exist_ok=True)
    os.chown(md, user.uid, user.gid)
    raw = hmtest.make_message(sender="someone@bench.example", subject="lda bench",
                              body=("x" * 78 + "\n") * 50)
    deliver = os.path.join(hmtest.BUILD, "homemail-deliver")
    lst = os.path.join(md, "homemail-junklist")

    def run(n):
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            p = hmtest.as_user(user, [deliver, "--maildir", md, "--no-sieve",
                                      "-f", "someone@bench.example"],
                               input=raw, capture_output=True)
            ts.append(time.perf_counter() - t0)
            assert p.returncode == 0, p.stderr
        return statistics.median(ts)

    results = {}
    for size in (0, 5000, 50000):
        if os.path.exists(lst):
            os.unlink(lst)
        if size:
            with open(lst, "w") as f:
                for i in range(size):
                    f.write(f"B {1700000000 + i} user{i:06d}@list{i % 97}.example\n")
            os.chown(lst, user.uid, user.gid)
        results[size] = run(N_DELIVER)
    base = results[0]
    for size, t in results.items():
        print(f"homemail-deliver --no-sieve, 4 KB, list of {size:>5} entries: "
              f"median {t * 1000:.2f} ms, ratio vs no list {t / base:.2f}x")


LIST_BENCH = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "hm_junklist.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
	const char *dir = argv[1]; int reps = atoi(argv[2]);
	double best_u = 1e9, best_l = 1e9;
	for (int r = 0; r < reps; r++) {
		char a[64]; snprintf(a, sizeof a, "new%d@bench.example", r);
		struct hm_junk_change c = { a, HM_JUNK_BLOCKED };
		struct hm_junklist_opts o = { .max_per_kind = 50000 };
		double t0 = now();
		if (hm_junklist_update(dir, &c, 1, &o, NULL) < 0) { perror("update"); return 1; }
		double t1 = now();
		struct hm_junklist l; hm_junklist_init(&l);
		if (hm_junklist_load(&l, dir) < 0) { perror("load"); return 1; }
		(void)hm_junklist_lookup(&l, "user000001@list1.example", NULL);
		hm_junklist_free(&l);
		double t2 = now();
		if (t1 - t0 < best_u) best_u = t1 - t0;
		if (t2 - t1 < best_l) best_l = t2 - t1;
	}
	printf("%.3f %.3f\n", best_u * 1000, best_l * 1000);
	return 0;
}
"""


def bench_list():
    import tempfile
    w = tempfile.mkdtemp(prefix="junkbench-")
    src, exe = os.path.join(w, "b.c"), os.path.join(w, "b")
    open(src, "w").write(LIST_BENCH)
    subprocess.run(["cc", "-O2", "-I", os.path.join(TOP, "lib"), "-o", exe, src,
                    os.path.join(hmtest.BUILD_TREE, "libhomemail.a")], check=True)
    for size in (0, 5000, 50000):
        d = os.path.join(w, f"d{size}")
        os.mkdir(d)
        with open(os.path.join(d, "homemail-junklist"), "w") as f:
            for i in range(size):
                f.write(f"B {1700000000 + i} user{i:06d}@list{i % 97}.example\n")
        out = subprocess.run([exe, d, "20"], capture_output=True, text=True, check=True)
        upd, load = out.stdout.split()
        print(f"hm_junklist, list of {size:>5} entries (best of 20): locked update "
              f"with fsync {upd} ms (the plugin's cost per committed move), "
              f"load+lookup {load} ms (homemail-deliver's cost per message)")
    subprocess.run(["rm", "-rf", w])


if __name__ == "__main__":
    bench_list()
    bench_imap()
    bench_deliver()
