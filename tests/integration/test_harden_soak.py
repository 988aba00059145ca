"""test_harden_soak.py — load with nothing lost: SMTP in, Maildir out, IMAP readers (issue 8).

A private exim4 with homemail_scan.so as local_scan delivers through the
`homemail` pipe transport (homemail-deliver, userdb lookups over the private
dovecot's auth-userdb socket) into 50 mailboxes, while 8 SMTP clients send
HM_SOAK_MESSAGES messages (default 1,000 in make check; the report run uses
10,000) and IMAP readers log in over TLS and read the mailboxes at the same
time.  Half-way through, dovecot is restarted: deliveries in that window must
defer (exit 75, the message stays queued) and complete afterwards.

Afterwards: every message is in exactly one mailbox exactly once (none lost,
none duplicated, the right recipient), Exim's queue is empty and nothing is
frozen, Dovecot's index agrees with the files, and the long-lived daemon
processes kept a flat memory footprint.  Throughput is printed and written to
build/harden-soak-summary.txt.
"""
import hashlib
import os
import random
import re
import smtplib
import subprocess
import threading
import time

import pytest

import hmtest

DELIVER = os.path.join(hmtest.BUILD, "homemail-deliver")
SCAN_SO = os.path.join(hmtest.BUILD, "homemail_scan.so")
N_MESSAGES = int(os.environ.get("HM_SOAK_MESSAGES", "1000"))
N_USERS = int(os.environ.get("HM_SOAK_USERS", "50"))
N_CLIENTS = 8
N_READERS = 3
SUMMARY = os.path.join(hmtest.BUILD_TREE, "harden-soak-summary.txt")


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid):
    """Every descendant pid of pid (from /proc)."""
    kids = {}
    for n in os.listdir("/proc"):
        if n.isdigit():
            try:
                with open(f"/proc/{n}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(n))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def comm(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return "?"


def make_msg(i, rcpt, rnd):
    body_lines = [f"SOAK {i}"] + ["".join(rnd.choice("abcdefghij klmnopqrstuvwxyz")
                                          for _ in range(70)) for _ in range(rnd.randint(5, 200))]
    body = "\r\n".join(body_lines) + "\r\n"
    digest = hashlib.sha256(body.encode()).hexdigest()
    return (f"From: Soak Sender <soak@example.org>\r\nTo: {rcpt}\r\n"
            f"Subject: soak {i}\r\nDate: Sat, 28 Nov 2026 03:00:00 +0000\r\n"
            f"Message-ID: <soak-{i}@harden.test>\r\nX-Soak-Digest: {digest}\r\n"
            f"\r\n{body}").encode()


def test_soak_nothing_lost():
    rnd = random.Random(10000)
    users = [hmtest.make_user(prefix="hk") for _ in range(N_USERS)]
    d = hmtest.Dovecot(None, users=users, protocols="imap").start()
    w = hmtest._workdir("soak")
    conf = os.path.join(w, "deliver.conf")
    with open(conf, "w") as f:
        f.write(f"auth_socket = {d.auth_userdb_socket}\nlookup_own_user = yes\n"
                "auth_timeout = 5\n")
    os.chmod(conf, 0o644)
    san = hmtest.sanitizer_env()       # SANITIZE=1: homemail_scan.so inside exim
    e = hmtest.Exim(None, transport_command=f"{DELIVER} --config {conf}", local_scan=SCAN_SO,
                    env=san)
    e.start()
    sent, failed_send = {}, []
    lock = threading.Lock()
    stop_readers = threading.Event()
    reader_stats = {"sessions": 0, "errors": 0}
    reader_errors = []  # (session start, failure time, error) of every failed IMAP session
    mem = {}            # pid -> [rss samples] for long-lived daemon processes
    restart = {"done": False, "at": None, "down_s": 0.0}
    counter = iter(range(N_MESSAGES))

    def sender(cid):
        r = random.Random(cid)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            u = users[r.randrange(len(users))]
            m = make_msg(i, u.address, r)
            for attempt in range(5):
                try:
                    with smtplib.SMTP("127.0.0.1", e.smtp_port, timeout=120) as s:
                        s.ehlo(f"client{cid}.example")
                        s.sendmail("soak@example.org", [u.address], m)
                    with lock:
                        sent[i] = u.name
                    break
                except (smtplib.SMTPException, OSError) as ex:
                    time.sleep(0.5 * (attempt + 1))
                    err = ex
            else:
                with lock:
                    failed_send.append((i, repr(err)))

    def reader(rid):
        r = random.Random(100 + rid)
        while not stop_readers.is_set():
            u = users[r.randrange(len(users))]
            t_begin = time.monotonic()
            try:
                c = d.imap(u)
                c.select("INBOX")
                typ, data = c.search(None, "ALL")
                ids = data[0].split()
                if ids:
                    c.fetch(ids[-1], "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
                c.logout()
                reader_stats["sessions"] += 1
            except Exception as ex:
                reader_stats["errors"] += 1      # allowed only while dovecot restarts
                reader_errors.append((t_begin, time.monotonic(), repr(ex)))
                time.sleep(0.2)

    def sample():
        pids = [e.proc.pid] if e.proc else []
        if d.proc:
            pids += [d.proc.pid] + children(d.proc.pid)
        for p in pids:
            name = comm(p)
            if "imap" in name or "auth-worker" in name:
                continue        # per-session processes come and go
            v = rss_kb(p)
            if v:
                mem.setdefault((p, name), []).append(v)

    threads = [threading.Thread(target=sender, args=(c,)) for c in range(N_CLIENTS)]
    readers = [threading.Thread(target=reader, args=(c,), daemon=True) for c in range(N_READERS)]
    t0 = time.monotonic()
    for t in threads + readers:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(0.5)
            sample()
            if not restart["done"] and len(sent) >= N_MESSAGES // 2:
                restart["at"] = len(sent)
                t1 = restart["t_down"] = time.monotonic()
                d.stop()
                # stay down until Exim has seen deliveries defer (or 15 s)
                end = time.monotonic() + 15
                while time.monotonic() < end and "returned 75" not in e.mainlog():
                    time.sleep(0.3)
                time.sleep(1.0)
                d.start()
                restart["t_up"] = time.monotonic()
                restart["down_s"] = restart["t_up"] - t1
                restart["done"] = True
                mem.clear()    # dovecot has new pids; compare within the second half
        t_sent = time.monotonic()
        # deferred messages: queue runs until everything is delivered
        end = time.monotonic() + max(300, N_MESSAGES / 5)
        while e.queue_count() > 0 and time.monotonic() < end:
            e.queue_run()
            sample()
            time.sleep(1)
        t_done = time.monotonic()
        stop_readers.set()
        for t in readers:
            t.join(30)
        sample()

        assert not failed_send, f"{len(failed_send)} messages could not be sent: {failed_send[:5]}"
        assert len(sent) == N_MESSAGES
        assert e.queue_count() == 0, e.exim("-bp").stdout[-3000:]
        frozen = e.exim("-bpr").stdout.count("*** frozen ***")
        assert frozen == 0

        # every message exactly once, in its recipient's mailbox, complete
        found = {}
        bad = []
        for u in users:
            for p in hmtest.maildir_files(u.maildir):
                data = open(p, "rb").read()
                m = re.search(rb"Message-ID: <soak-(\d+)@harden\.test>", data)
                dg = re.search(rb"X-Soak-Digest: ([0-9a-f]{64})", data)
                if not m or not dg:
                    bad.append(p)
                    continue
                body = data.split(b"\n\n", 1)[1]
                if hashlib.sha256(body.replace(b"\n", b"\r\n")).hexdigest() != dg.group(1).decode():
                    bad.append(p)
                found.setdefault(int(m.group(1)), []).append(u.name)
        lost = [i for i in sent if i not in found]
        dups = {i: v for i, v in found.items() if len(v) > 1}
        wrong = [i for i, v in found.items() if i in sent and v[0] != sent[i]]
        deferrals = e.mainlog().count("returned 75")
        panic = e.paniclog()

        # Dovecot's index agrees with the files
        disagree = []
        for u in users:
            r = d.doveadm("mailbox", "status", "-u", u.name, "messages", "INBOX")
            files = len(hmtest.maildir_files(u.maildir))
            m = re.search(r"messages=(\d+)", r.stdout)
            if not m or int(m.group(1)) != files:
                disagree.append((u.name, r.stdout.strip() or r.stderr.strip(), files))

        # memory of the long-lived daemons (second half): no steady growth
        grew = []
        for (pid, name), v in mem.items():
            if len(v) >= 4 and v[-1] > v[len(v) // 4] * 1.25 + 4096:
                grew.append((name, pid, v[len(v) // 4], v[-1]))

        rate = N_MESSAGES / (t_done - t0)
        line = (f"soak: {N_MESSAGES} messages, {N_CLIENTS} SMTP clients, {N_USERS} mailboxes, "
                f"{reader_stats['sessions']} IMAP reader sessions ({reader_stats['errors']} "
                f"refused while dovecot restarted), sent in {t_sent - t0:.1f}s, all delivered "
                f"in {t_done - t0:.1f}s = {rate:.1f} msg/s; dovecot down {restart['down_s']:.1f}s "
                f"after {restart['at']} messages, {deferrals} deliveries deferred (75) and "
                f"retried; lost={len(lost)} duplicated={len(dups)} misdelivered={len(wrong)} "
                f"corrupt={len(bad)} index-mismatch={len(disagree)} memory-growth={len(grew)}; "
                f"daemon RSS (KB): " + ", ".join(f"{n.split('/')[-1]}:{v[0]}->{v[-1]}"
                                                 for (p, n), v in sorted(mem.items())[:8]))
        print(line)
        with open(SUMMARY, "a") as f:
            f.write(line + "\n")
        assert not lost, f"{len(lost)} messages lost: {lost[:20]}"
        assert not dups, f"duplicates: {list(dups.items())[:10]}"
        assert not wrong, f"misdelivered: {wrong[:10]}"
        assert not bad, f"corrupt files: {bad[:10]}"
        assert restart["done"] and deferrals > 0, "the dovecot restart did not defer anything"
        assert not disagree, f"dovecot index disagrees: {disagree[:10]}"
        assert not grew, f"memory grew: {grew}"
        # IMAP readers fail only in sessions that overlapped the restart
        assert reader_stats["sessions"] > 0, "no IMAP reader session succeeded"
        stray = [(round(b - t0, 1), round(f - t0, 1), err) for b, f, err in reader_errors
                 if not (b <= restart["t_up"] and f >= restart["t_down"])]
        assert not stray, f"IMAP reader errors outside the dovecot restart: {stray[:5]}"
        assert not hmtest.sanitizer_reports(san), hmtest.sanitizer_reports(san)
        assert "Segmentation" not in panic and "crash" not in panic.lower(), panic[-2000:]
    finally:
        stop_readers.set()
        e.stop()
        d.stop()
