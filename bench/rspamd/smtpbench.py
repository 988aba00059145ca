"""smtpbench.py — SMTP receive time of one message against several private
Exims, side by side (bench/rspamd/run; reusable by other benchmarks:
sys.path.insert(0, "<top>/bench/rspamd"); import smtpbench).

receive_time(port, rcpt, data): one fresh SMTP transaction (connect, EHLO,
MAIL, RCPT, DATA, the message, the reply to the final dot); returns
(code, reply text, seconds).  The time ends at the reply to the final dot:
everything Exim does before answering (DATA ACL: spam, malware; local_scan)
is in it, the delivery afterwards is not.

compare(exims, rcpt, data, rounds, warmup): {name: [seconds...]}, the
Exims taken in turn within every round so load from other processes hits
all alike; raises SystemExit when a message is not accepted (a figure of
refusals would mean nothing).
"""
import random
import socket
import statistics
import time


def _reply(f):
    lines = []
    while True:
        ln = f.readline()
        if not ln:
            raise ConnectionError("connection closed")
        lines.append(ln.decode("latin-1").rstrip("\r\n"))
        if len(ln) < 4 or ln[3:4] != b"-":
            return int(lines[-1][:3]), "\n".join(lines)


def receive_time(port, rcpt, data, host="127.0.0.1", source="127.0.0.1",
                 sender="bench@example.org", timeout=120):
    t0 = time.monotonic()
    s = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    f = s.makefile("rb")
    try:
        _reply(f)
        for cmd in (b"EHLO bench.example", b"MAIL FROM:<%s>" % sender.encode(),
                    b"RCPT TO:<%s>" % rcpt.encode(), b"DATA"):
            s.sendall(cmd + b"\r\n")
            code, text = _reply(f)
            if code >= 400:
                return code, text, time.monotonic() - t0
        lines = data.replace(b"\r\n", b"\n").split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        body = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)
        s.sendall(body + b".\r\n")
        code, text = _reply(f)
        el = time.monotonic() - t0
        s.sendall(b"QUIT\r\n")
        return code, text, el
    finally:
        f.close()
        s.close()


def compare(exims, rcpt, data, rounds=30, warmup=3, **kw):
    times = {k: [] for k in exims}
    for i in range(warmup + rounds):
        for k, port in exims.items():
            code, text, el = receive_time(port, rcpt, data, **kw)
            if code != 250:
                raise SystemExit(f"{k}: message not accepted: {code} {text}")
            if i >= warmup:
                times[k].append(el)
    return times


def median_ms(v):
    return statistics.median(v) * 1000


WORDS = ("meeting agenda budget report quarterly numbers coffee schedule holiday "
         "project deadline review invoice customer delivery warehouse contract "
         "proposal minutes summary payment account travel office training "
         "software release update planning marketing sales support network").split()


def message(size=100 * 1024, seed=1, subject="benchmark message"):
    """A plausible size-byte message: a text part of prose and a base64
    attachment making up the rest (deterministic for a seed)."""
    rnd = random.Random(seed)
    text_len = size * 2 // 5
    words, n = [], 0
    while n < text_len:
        w = rnd.choice(WORDS)
        words.append(w)
        n += len(w) + 1
    text = ""
    line = []
    for w in words:
        line.append(w)
        if sum(len(x) + 1 for x in line) > 70:
            text += " ".join(line) + "\n"
            line = []
    text += " ".join(line) + "\n"
    head = (f"From: Sender <sender@outside.example>\nTo: postmaster@home.com.bo\n"
            f"Subject: {subject}\nDate: Sat, 05 Dec 2026 08:00:00 +0000\n"
            f"Message-ID: <bench-{seed}@outside.example>\nMIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=\"b1\"\n\n"
            "--b1\nContent-Type: text/plain; charset=us-ascii\n\n")
    import base64
    room = max(0, size - len(head) - len(text) - 200)
    blob = base64.encodebytes(bytes(rnd.getrandbits(8) for _ in range(room * 57 // 77))).decode()
    att = ("--b1\nContent-Type: application/pdf; name=\"report.pdf\"\n"
           "Content-Disposition: attachment; filename=\"report.pdf\"\n"
           "Content-Transfer-Encoding: base64\n\n" + blob + "--b1--\n")
    return (head + text + att).encode()
