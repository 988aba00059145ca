"""test_scan_corpus.py — the hostile and clean scan corpus through
build/homemail-scan and through a private real exim4 with homemail_scan.so
loaded (local_scan_path).

For every message of tests/scan-corpus/MANIFEST (checked in) and of the
large generated set (generate.py: 100,000-level nesting, 100,000 parts,
10 MB header, 100 KB line, 1 MB with 10 attachments):
  * homemail-scan gives the expected verdict, decided by the expected rule;
  * Exim answers the DATA with the expected code (550 reject, 451 defer,
    250 accept), never crashes (no 421, no panic log, no "crashed" line,
    the daemon still runs), logs one homemail-scan line per scanned message;
  * accepted messages are delivered byte for byte (apart from the headers
    Exim adds: Return-path, Envelope-to, Delivery-date, Received, and our
    X-Homemail-Scan).
The SMTP client here is a raw socket client: smtplib rewrites bare CR to
CRLF, which would hide the bare-CR case from Exim.
"""
import os
import re
import socket
import subprocess
import time

import pytest

import hmtest

from test_scan_exim import _conf, make_sink, san_env, san_reports

SCAN = os.path.join(hmtest.BUILD, "homemail-scan")
SO = os.path.join(hmtest.BUILD, "homemail_scan.so")
CORPUS = os.path.join(hmtest.TOP, "tests", "scan-corpus")


def _read_manifest(path, base):
    out = []
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split()
        exim = f[1]
        for x in f[3:]:
            if x.startswith("exim="):
                exim = x[5:]
        out.append(pytest.param(os.path.join(base, f[0]), f[1], f[2], exim, id=os.path.basename(f[0])))
    return out


GEN_DIR = hmtest._workdir("scan-corpus")
subprocess.run(["/usr/bin/python3", os.path.join(CORPUS, "generate.py"), GEN_DIR], check=True)
CASES = (_read_manifest(os.path.join(CORPUS, "MANIFEST"), CORPUS)
         + _read_manifest(os.path.join(GEN_DIR, "MANIFEST"), GEN_DIR))


@pytest.fixture(scope="module")
def conf():
    """An empty scan.conf (built-in defaults), independent of /etc/homemail."""
    return _conf("# defaults\n")


def test_corpus_size():
    """The issue asks for at least 60 hostile messages and clean ones."""
    hostile = [c for c in CASES if "/clean/" not in c.values[0]]
    clean = [c for c in CASES if "/clean/" in c.values[0]]
    assert len(hostile) >= 60
    assert len(clean) >= 10


@pytest.mark.parametrize("path,verdict,rule,exim", CASES)
def test_cli_verdict(conf, path, verdict, rule, exim):
    r = subprocess.run([SCAN, "-c", conf, "-l", path], capture_output=True, text=True,
                       errors="replace", timeout=120)
    out = r.stdout.splitlines()
    assert out, r.stderr
    log = out[-1]
    if verdict == "accept":
        assert r.returncode == 0, r.stdout
        assert out[0] == "accept"
        assert out[1].startswith("X-Homemail-Scan: ")
        if rule == "-":
            assert "rules=" not in out[1]
        else:
            assert "rules=" in out[1] and rule in out[1].split("rules=")[1].split(";")[0].split(",")
    else:
        code = {"reject": 1, "tempreject": 2}[verdict]
        assert r.returncode == code, r.stdout
        assert out[0].startswith(verdict + ": ")
        assert f"; rule={rule};" in log, log


# --------------------------------------------------------------------------
def _reply(f):
    lines = []
    while True:
        ln = f.readline()
        if not ln:
            raise ConnectionError("connection closed")
        lines.append(ln.decode("latin-1").rstrip("\r\n"))
        if len(ln) < 4 or ln[3:4] != b"-":
            break
    return int(lines[-1][:3]), "\n".join(lines)


def smtp_raw(port, mail_from, rcpt, data):
    """Send one message; returns (code, text) of the final DATA reply (or of
    the first refusal).  LF becomes CRLF, bare CR stays, dots are stuffed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=180)
    f = s.makefile("rb")
    try:
        code, t = _reply(f)
        assert code == 220, t
        for cmd in (b"EHLO client.example", b"MAIL FROM:<%s>" % mail_from.encode(),
                    b"RCPT TO:<%s>" % rcpt.encode(), b"DATA"):
            s.sendall(cmd + b"\r\n")
            code, t = _reply(f)
            if code >= 400:
                return code, t
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        body = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)
        try:
            s.sendall(body + b".\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            code, t = _reply(f)
        except OSError as e:  # refused mid-transfer and reset before the reply was read
            return 0, f"connection dropped: {e}"
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
        return code, t
    finally:
        f.close()
        s.close()


@pytest.fixture(scope="module")
def exim_sink(conf):
    """A private exim4 with the module loaded; local mail goes to a sink
    script that stores each message as a file."""
    sink, out = make_sink("scan-exim")
    user = hmtest.make_user()
    e = hmtest.Exim(None, transport_command=sink, local_scan=SO, env=san_env(),
                    extra_main=f"add_environment = HOMEMAIL_SCAN_CONF={conf}\n")
    e.start()
    yield e, out, user
    e.stop()


def _fields(block):
    """Header block (bytes, LF) -> list of fields, each with its continuation lines."""
    fields = []
    for ln in block.split(b"\n"):
        if ln[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\n" + ln
        else:
            fields.append(ln)
    return fields


def _strip_added(delivered):
    """Remove the headers Exim and the module add; return (original-ish bytes, scan header)."""
    head, sep, body = delivered.partition(b"\n\n")
    fields = _fields(head)
    added = []
    for name in (b"return-path:", b"envelope-to:", b"delivery-date:", b"received:"):
        assert fields and fields[0].lower().startswith(name), fields[:1]
        fields.pop(0)
    scan = [f for f in fields if f.lower().startswith(b"x-homemail-scan:")]
    assert len(scan) == 1, scan
    assert fields[-1] == scan[0], "X-Homemail-Scan is appended at the end"
    fields.pop()
    return b"\n".join(fields) + sep + body, scan[0].decode()


def _files(d):
    return sorted(n for n in os.listdir(d) if n.endswith(".eml"))


@pytest.mark.parametrize("path,verdict,rule,exim", CASES)
def test_exim_verdict(exim_sink, path, verdict, rule, exim):
    e, out, user = exim_sink
    data = open(path, "rb").read()
    before = _files(out)
    code, text = smtp_raw(e.smtp_port, "sender@example.org", f"{user.name}@home.com.bo", data)
    assert code != 421, text
    assert e.proc.poll() is None, "exim daemon died"
    if exim == "reject-by-exim":
        # Exim's own limit (header_maxsize) refuses it before local_scan; it may
        # drop the connection mid-transfer instead of answering
        assert code == 0 or 500 <= code < 600, text
    elif exim == "reject":
        assert 500 <= code < 600, text
        assert not re.search(r"(^|[\s<(\[\"'=:])/[\w.-]", text), f"a path in the reply: {text}"
    elif exim == "tempreject":
        assert 400 <= code < 500, text
    else:
        assert code == 250, text
        # find this message's delivery by its Message-ID (a late delivery of an
        # earlier message must not be taken for it)
        mid = [ln for ln in data.split(b"\n\n")[0].split(b"\n") if ln.lower().startswith(b"message-id:")]

        def mine():
            for n in _files(out):
                if n in before:
                    continue
                b = open(os.path.join(out, n), "rb").read()
                if not mid or mid[0] in b.split(b"\n\n")[0].split(b"\n"):
                    return b
            return None
        got = hmtest.wait_for(mine, 60, 0.05, "delivery")
        orig, scan = _strip_added(got)
        assert scan.startswith("X-Homemail-Scan: ")
        if exim == "accept-changed":
            return  # Exim rewrote the message itself before local_scan (see MANIFEST)
        want = data.replace(b"\r\n", b"\n")
        assert orig == want, "delivered byte for byte"
        if rule != "-":
            assert rule in scan
        else:
            assert "rules=" not in scan


def test_exim_survived(exim_sink):
    """After the whole corpus: no panic, no crash, one scan line per scan."""
    e, out, user = exim_sink
    assert e.proc.poll() is None
    assert e.paniclog() == ""
    log = e.mainlog()
    assert "crashed" not in log
    # Exim's own words when local_scan overran local_scan_timeout, died or
    # did not load
    bad = re.findall(r".*local_scan\(\) (?:function (?:timed out|crashed)|library).*", log)
    assert not bad, bad[:5]
    # every message that reached local_scan logged exactly one verdict line
    ids_scanned = [ln.split()[2] for ln in log.splitlines() if " homemail-scan: " in ln]
    assert len(ids_scanned) == len(set(ids_scanned))
    assert len(ids_scanned) >= len(CASES) - 1  # the 10 MB header stops in Exim itself
    assert san_reports() == []
