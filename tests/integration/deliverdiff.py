"""deliverdiff — the delivery-level differential runner (issue 13), used by
test_deliver_diff.py and from the command line.

Every case (all cases of tests/sieve-diff/, read with sievediff's case
reader, also the `fails: both` ones, plus the action cases in
tests/deliver-diff/*.cases; a case file before.sieve / after.sieve is the
admin's script around the user's) is
delivered twice, as a non-root test user, with the same message, envelope
(-f, -r, -a), script and frozen time (libfaketime, 2026-03-15 12:00 UTC):

  lda  /usr/lib/dovecot/dovecot-lda -e with Pigeonhole 0.5.19, a private
       minimal config (LDA_CONF: maildir, lda_mailbox_autocreate = yes for
       README deviation #1, postmaster_address, sendmail_path = the case's
       stand-in), the script as `sieve = file:DIR;active=DIR/script.sieve`
       (ereject -> reject, deviation #2, as sievediff's N8);
  hm   build/homemail-deliver -e --maildir DIR --sieve FILE, with
       HOMEMAIL_SENDMAIL = the case's stand-in, sieve_dir and
       HOMEMAIL_SIEVE_GLOBAL_BASE pointing at the case's scripts; run in a
       private mount namespace where /dev/log is a socket of the case, so
       its syslog lines are read (HM_NS).

Each side has its own fresh Maildir, home and sendmail stand-in (a shell
script that records argv and stdin of each call).  Both Maildirs are read
back by `doveadm mailbox list` and `doveadm fetch` on a private config
(READ_CONF), as the same user.  The outcome of a side is a list of lines:

  exit N                      75 / 77 / 0 ...; with 77 the reason line
  reject "REASON"             (dovecot-lda -e and homemail-deliver -e both
                               print it on stderr; control chars -> '?')
  folder "NAME"               every folder `mailbox list` shows
  msg "FOLDER" flags="..." body=SHA len=N
                              every message: flags and keywords as Dovecot
                              reports them (\\Recent dropped: the reader
                              sets it), bytes below the leading trace fields
                              each agent adds (Return-Path, Delivered-To,
                              X-Sieve, X-Sieve-Redirected-From)
  send redirect from=<S> to=<R,..> mid=yes|no body=SHA len=N
                              (mid: a Message-ID is there; a leading one,
                               added by the agent, is not in the body)
  send vacation from=<S> to=<R> | To: .. | From: .. | Subject: (decoded) |
       Auto-Submitted | In-Reply-To | References | mime=STRUCTURE |
       text=SHA (decoded text parts, trailing blanks cut)
  send report ...             a DSN/MDN (multipart/report): type and text
  send other ...              anything else handed to sendmail
  log compile-error "NAME"    a script the side's log says does not compile
                              (dovecot-lda's log; homemail-deliver's syslog),
                              `(no detail)` after it when its errors are not
                              logged; a `fails: both` case must have one for
                              script.sieve on both sides (run_case)

Lines are sorted within their kind, so the order of sendmail calls and of
folders does not count.  A case agrees when both lists are equal.

tests/deliver-diff/KNOWN lists today's disagreements (id + reason) and
tests/deliver-diff/DEVIATIONS the deliberate ones (id + README deviation
row); see classify().
"""
import concurrent.futures
import email
import email.policy
import hashlib
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sievediff  # noqa: E402

TOP = sievediff.TOP
CASE_DIR = os.path.join(TOP, "tests", "deliver-diff")
HM_DELIVER = os.environ.get("HM_DELIVER") or os.path.join(TOP, "build", "homemail-deliver")
LDA = "/usr/lib/dovecot/dovecot-lda"
DOVEADM = "/usr/bin/doveadm"
README = os.path.join(TOP, "README.md")

COMMON_CONF = """\
# private config of the delivery differential suite (deliverdiff.py)
base_dir = {ws}/run
state_dir = {ws}/state
log_path = /dev/stderr
stats_writer_socket_path =
mail_location = maildir:{ws}/none
import_environment = TZ LD_PRELOAD FAKETIME FAKETIME_DISABLE_SHM
postmaster_address = postmaster@home.com.bo
hostname = mail.home.com.bo
namespace inbox {{
  inbox = yes
  separator = .
}}
"""
LDA_CONF = COMMON_CONF + """\
mail_plugins = sieve
lda_mailbox_autocreate = yes
sendmail_path = /bin/false
plugin {{
  sieve_extensions = {ext}
}}
"""
READ_CONF = COMMON_CONF

STANDIN = """\
#!/bin/sh
# sendmail stand-in (deliverdiff.py): one directory per call, argv + stdin
d=$(/usr/bin/mktemp -d {out}/call.XXXXXX) || exit 75
for a in "$@"; do printf '%s\\0' "$a"; done > "$d/argv"
/bin/cat > "$d/stdin"
"""

PRECREATE = "precreate.folders"   # a case file: folders that exist before delivery
# case files that are the admin's scripts run around the user's: dovecot-lda
# gets them as sieve_before / sieve_after, homemail-deliver finds them in
# HOMEMAIL_SIEVE_GLOBAL_BASE/before.d and after.d
BEFORE, AFTER = "before.sieve", "after.sieve"
# /dev nodes homemail-deliver sees in its mount namespace (run_hm: there
# /dev/log is the case's socket, so its syslog lines are captured)
DEV_NODES = ("null", "zero", "full", "random", "urandom")
HM_NS = (
    'd=$1 u=$2 g=$3; shift 3\n'
    'for n in ' + " ".join(DEV_NODES) + '; do mount --bind /dev/$n "$d/$n" || exit 70; done\n'
    'mount --bind /dev/shm "$d/shm" || exit 70\n'   # libfaketime's semaphore
    'mount --rbind "$d" /dev || exit 70\n'
    'exec /usr/bin/setpriv --reuid="$u" --regid="$g" --groups="$g" -- "$@"\n')
TRACE_FIELDS = ("return-path", "delivered-to", "x-sieve", "x-sieve-redirected-from")
# a redirected message that has no Message-ID gets one (RFC 5322 3.6.4 SHOULD;
# Pigeonhole adds <dovecot-sieve-...@host> after its trace fields): its value
# is the agent's own, so a leading one is stripped like a trace field and
# the redirect line says whether the message handed on has one (mid=)
REDIRECT_TRACE_FIELDS = TRACE_FIELDS + ("message-id",)


# ---------------------------------------------------------------------
# Cases
def load_cases(sieve_dir=sievediff.CASE_DIR, own_dir=CASE_DIR):
    """(every sieve-diff case, new cases): lists of Case.  A case marked
    `fails: both` is refused by both engines: it is delivered like the
    others (the message must still arrive: the implicit keep) and both
    sides' logs must name the compile error (see compile_errors)."""
    old = list(sievediff.load_cases(sieve_dir))
    new = sievediff.load_cases(own_dir)
    ids = {c.id for c in old}
    for c in new:
        if c.id in ids:
            raise ValueError(f"case id {c.id} used twice")
    return old, new


def group_of(case):
    """The summary group: the case file's stem."""
    return case.id.split("/", 1)[0]


def read_list(path, what):
    """KNOWN / DEVIATIONS: `ID  TEXT` lines, '#' comments.  -> {id: text}"""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            cid, _, rest = line.partition(" ")
            rest = rest.strip()
            if not rest:
                raise ValueError(f"{path}:{no}: {what} needs a text after the id")
            if cid in out:
                raise ValueError(f"{path}:{no}: {cid} listed twice")
            out[cid] = rest
    return out


def deviation_rows():
    """Row numbers of README's deviation table."""
    rows = set()
    with open(README, encoding="utf-8") as f:
        text = f.read()
    sec = text.split("## Sieve: deliberate differences from Pigeonhole", 1)[1]
    sec = sec.split("\n## ", 1)[0]
    for m in re.finditer(r"(?m)^\| (\d+) \|", sec):
        rows.add(int(m.group(1)))
    return rows


# ---------------------------------------------------------------------
# Workspace
def _doveconf_env(conf):
    """The settings of conf as doveconf hands them to a program it execs:
    read once, so each dovecot-lda/doveadm run skips the doveconf exec."""
    p = subprocess.run(["doveconf", "-c", conf, "-e", "/usr/bin/env", "-0"],
                       capture_output=True, env={"PATH": "/usr/bin:/bin"}, check=True)
    env = {}
    for item in p.stdout.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            env[k.decode()] = v.decode()
    if env.get("DOVECONF_ENV") != "1":
        raise RuntimeError("doveconf -e did not hand over its settings")
    for k in ("PATH", "PWD", "SHLVL", "_"):
        env.pop(k, None)
    return env


class Workspace:
    """A temp tree the test user can use: the two configs, a copy of
    homemail-deliver (the checkout may sit where the user cannot enter),
    one directory per case.  Removed by close()."""

    def __init__(self, user, hm_binary=HM_DELIVER):
        self.user = user
        self.root = tempfile.mkdtemp(prefix="hm-deliverdiff-", dir="/var/tmp")
        os.chmod(self.root, 0o755)
        for sub in ("run", "state", "none"):
            os.mkdir(os.path.join(self.root, sub))
            os.chown(os.path.join(self.root, sub), user.uid, user.gid)
        self.lda_conf = self._write("lda.conf", LDA_CONF.format(ws=self.root,
                                                                ext=sievediff.EXTENSIONS))
        self.read_conf = self._write("read.conf", READ_CONF.format(ws=self.root))
        self.lda_env = _doveconf_env(self.lda_conf)
        self.read_env = _doveconf_env(self.read_conf)
        self.hm = self.install(hm_binary, "homemail-deliver")
        self.n = itertools.count(1)

    def _write(self, name, text, mode=0o644):
        p = os.path.join(self.root, name)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def install(self, binary, name):
        """A copy of an executable inside the workspace."""
        os.makedirs(os.path.join(self.root, "bin"), exist_ok=True)
        p = os.path.join(self.root, "bin", name)
        shutil.copy(binary, p)
        os.chmod(p, 0o755)
        return p

    def case_dir(self, case):
        """A fresh directory for one run of a case, owned by the user:
        ref/ (Pigeonhole's scripts), hm/ (homemail's), gb/global/ (homemail's
        :global), lda/ and hmd/ (home, Maildir, stand-in, out/ per side)."""
        d = os.path.join(self.root, f"c{next(self.n):04d}")   # threads: count() is atomic
        os.mkdir(d)
        for sub in ("ref", "hm", "gb", "gb/global", "gb/before.d", "gb/after.d",
                    "lda", "lda/out", "hmd", "hmd/out"):
            os.mkdir(os.path.join(d, sub))
        scripts = dict(case.files)
        scripts["script.sieve"] = case.script
        for name, text in scripts.items():
            for where, t in (("ref", re.sub(r"\bereject\b", "reject", text)),
                             ("hm", text), ("gb/global", text)):
                with open(os.path.join(d, where, name), "w", encoding="utf-8") as f:
                    f.write(t)
            for special, sub in ((BEFORE, "before.d"), (AFTER, "after.d")):
                if name == special:
                    with open(os.path.join(d, "gb", sub, name), "w", encoding="utf-8") as f:
                        f.write(text)
        with open(os.path.join(d, "message.eml"), "wb") as f:
            f.write(case.message)
        with open(os.path.join(d, "hm.conf"), "w") as f:
            f.write(f"sieve_dir = {d}/hm\n")
        for side in ("lda", "hmd"):
            with open(os.path.join(d, side, "sendmail"), "w") as f:
                f.write(STANDIN.format(out=os.path.join(d, side, "out")))
            os.chmod(os.path.join(d, side, "sendmail"), 0o755)
        for base, dirs, files in os.walk(d):
            for n in [base] + [os.path.join(base, x) for x in files]:
                os.chown(n, self.user.uid, self.user.gid)
        # root's: homemail-deliver's /dev (mount points + /dev/log -> the socket)
        os.mkdir(os.path.join(d, "dev"))
        for n in DEV_NODES:
            open(os.path.join(d, "dev", n), "w").close()
        os.mkdir(os.path.join(d, "dev", "shm"))
        os.symlink(os.path.join(d, "log.sock"), os.path.join(d, "dev", "log"))
        return d

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------
# Running
def _time_env():
    return {"TZ": "UTC", "LD_PRELOAD": sievediff.FAKETIME_LIB, "FAKETIME_DISABLE_SHM": "1",
            "FAKETIME": sievediff.NOW_FAKETIME}


def _as_user(ws, argv, env, stdin=None, timeout=60):
    """Run argv as the test user (what hmtest.as_user does, without its
    setpriv exec: libfaketime must be preloaded into the program only)."""
    try:
        p = subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=timeout,
                           user=ws.user.uid, group=ws.user.gid, extra_groups=[ws.user.gid])
    except subprocess.TimeoutExpired:
        return -1, b"", b"TIMEOUT"
    return p.returncode, p.stdout, p.stderr


def _sender(case):
    """-f: the null sender is an empty argument, as Exim's pipe transport
    gives `$sender_address` for a bounce."""
    return "" if case.env["from"] in ("<>", "") else case.env["from"]


def run_lda(ws, d, case):
    home = os.path.join(d, "lda")
    env = dict(ws.lda_env, HOME=home, USER=ws.user.name, PATH="/usr/bin:/bin", **_time_env())
    argv = [LDA, "-e",
            "-o", f"mail_location=maildir:{home}/Maildir",
            "-o", f"plugin/sieve=file:{d}/ref;active={d}/ref/script.sieve",
            "-o", f"plugin/sieve_global={d}/ref",
            "-o", f"sendmail_path={home}/sendmail",
            "-o", f"log_path={home}/log", "-o", f"info_log_path={home}/log"]
    for name, key in ((BEFORE, "sieve_before"), (AFTER, "sieve_after")):
        if name in case.files:
            argv += ["-o", f"plugin/{key}={d}/ref/{name}"]
    argv += ["-f", _sender(case), "-r", case.env["to"], "-a", case.env["orig"]]
    return _as_user(ws, argv, env, case.message)


def run_hm(ws, d, case, binary=None, script=None):
    home = os.path.join(d, "hmd")
    env = dict(HOME=home, USER=ws.user.name, PATH="/usr/bin:/bin",
               HOMEMAIL_SENDMAIL=f"{home}/sendmail",
               HOMEMAIL_SIEVE_GLOBAL_BASE=f"{d}/gb", **_time_env())
    if os.environ.get("SANITIZE") == "1":   # libfaketime is preloaded ahead of the ASan runtime
        env["ASAN_OPTIONS"] = "verify_asan_link_order=0"
    argv = [binary or ws.hm, "-e", "--config", f"{d}/hm.conf",
            "--maildir", f"{home}/Maildir", "--sieve", script or f"{d}/hm/script.sieve",
            "-f", _sender(case), "-r", case.env["to"], "-a", case.env["orig"]]
    # its syslog lines: a datagram socket at d/log.sock, which is /dev/log
    # in a private mount namespace (HM_NS); syslog() has queued every line
    # by the time the program exits, so reading them after is complete
    import socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(os.path.join(d, "log.sock"))
        os.chmod(os.path.join(d, "log.sock"), 0o666)
        # libfaketime only in homemail-deliver (preloaded into the root
        # wrapper it makes a semaphore the user cannot open)
        pre = {k: env.pop(k) for k in ("LD_PRELOAD", "FAKETIME", "FAKETIME_DISABLE_SHM")}
        ns = ["/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c", HM_NS,
              "hm-ns", os.path.join(d, "dev"), str(ws.user.uid), str(ws.user.gid),
              "/usr/bin/env"] + [f"{k}={v}" for k, v in pre.items()]
        try:
            p = subprocess.run(ns + argv, input=case.message, capture_output=True, env=env,
                               timeout=60)
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired:
            rc, out, err = -1, b"", b"TIMEOUT"
        sock.setblocking(False)
        lines = []
        while True:
            try:
                lines.append(sock.recv(65536).decode("utf-8", "replace"))
            except BlockingIOError:
                break
    finally:
        sock.close()
    with open(os.path.join(home, "syslog"), "w", encoding="utf-8") as f:
        f.write("".join(x.rstrip("\n") + "\n" for x in lines))
    return rc, out, err


def read_maildir(ws, home):
    """(folders, messages) of home/Maildir as Dovecot reports them;
    messages = [(folder, flags, bytes)]."""
    env = dict(ws.read_env, HOME=home, USER=ws.user.name, PATH="/usr/bin:/bin")
    base = [DOVEADM, "-o", f"mail_location=maildir:{home}/Maildir"]
    rc, out, err = _as_user(ws, base + ["mailbox", "list"], env)
    if rc != 0:
        raise RuntimeError(f"doveadm mailbox list: {err.decode(errors='replace')}")
    folders = sorted(x for x in out.decode("utf-8", "replace").split("\n") if x)
    rc, out, err = _as_user(ws, base + ["-f", "pager", "fetch", "mailbox flags text", "ALL"], env)
    msgs = []
    if rc != 0:
        # a folder Dovecot cannot open is part of the outcome (what a user
        # would see), said without the side's paths and user name
        e = err.decode("utf-8", "replace").replace(ws.user.name, "USER").replace(home, "HOME")
        e = re.sub(r"^doveadm\(USER\): ", "", e.strip().split("\n")[0])
        msgs.append(("DOVEADM-ERROR", [e[:200]], b""))
    if out.strip():
        for rec in re.split(rb"\f\n(?=mailbox: )", out):
            m = re.match(rb"mailbox: (.*)\nflags: ?(.*)\ntext:\n", rec)
            if not m:
                raise RuntimeError(f"doveadm fetch: cannot parse {rec[:200]!r}")
            flags = [f for f in m.group(2).decode("utf-8", "replace").split()
                     if f.lower() != "\\recent"]
            msgs.append((m.group(1).decode("utf-8", "replace"), flags, rec[m.end():]))
    return folders, msgs


def precreate(ws, home, folders):
    """The case's existing folders, made by Dovecot in home/Maildir."""
    env = dict(ws.read_env, HOME=home, USER=ws.user.name, PATH="/usr/bin:/bin")
    rc, out, err = _as_user(ws, [DOVEADM, "-o", f"mail_location=maildir:{home}/Maildir",
                                 "mailbox", "create", "--"] + folders, env)
    if rc != 0:
        raise RuntimeError(f"doveadm mailbox create: {err.decode(errors='replace')}")


def strip_trace(raw, fields=TRACE_FIELDS):
    """The message below the leading trace fields an agent adds."""
    pos = 0
    while True:
        m = re.match(rb"([!-9;-~]+):[^\n]*\n(?:[ \t][^\n]*\n)*", raw[pos:])
        if not m or m.group(1).decode().lower() not in fields:
            return raw[pos:]
        pos += m.end()


def _sha(b):
    return hashlib.sha256(b).hexdigest()[:12]


def _q(s):
    return sievediff._q(s)


def _hval(msg, name):
    v = msg.get_all(name)
    if not v:
        return "-"
    return " / ".join(re.sub(r"\s+", " ", str(x)).strip() for x in v)


def _addrs(msg, name):
    """An address field as `Name <addr>` items: `<a>` and `a` are one form;
    a display name (RFC 2047 decoded) counts."""
    v = msg.get_all(name)
    if not v:
        return "-"
    import email.utils
    out = []
    for disp, addr in email.utils.getaddresses([str(x) for x in v]):
        disp = sievediff._decode_subject(disp) if disp else ""
        out.append((f"{disp!r} " if disp else "") + f"<{addr}>")
    return ", ".join(out)


def _decoded(msg, name):
    v = msg.get_all(name)
    if v is None:
        return "-"
    return " / ".join(re.sub(r"\s+", " ", sievediff._decode_subject(
        re.sub(r"\r?\n[ \t]", " ", str(x)))).strip() for x in v)


def _mime(part):
    """A part's structure: type, charset, and the children."""
    ct = part.get_content_type()
    cs = part.get_param("charset")
    s = ct + (f";charset={cs.lower()}" if cs else "")
    if part.is_multipart():
        s += "(" + ",".join(_mime(p) for p in part.get_payload()) + ")"
    return s


def _texts(msg):
    """The decoded text of every text/* leaf, trailing blanks cut."""
    out = []
    for p in msg.walk():
        if p.is_multipart() or p.get_content_maintype() != "text":
            continue
        b = p.get_payload(decode=True) or b""
        t = b.decode(p.get_content_charset() or "utf-8", "replace")
        out.append("\n".join(x.rstrip() for x in t.replace("\r\n", "\n").split("\n")).strip())
    return out


def _reason(r):
    """A reject reason in one form (sievediff's N7), line ends at its end cut
    (the MDN's text part ends where homemail's stderr line shows '??')."""
    return sievediff.norm_reason(r.strip()).rstrip("?").strip()


def parse_call(argv, data):
    """One recorded sendmail call -> an outcome line."""
    sender, rcpts, opts_done = None, [], False
    i = 0
    while i < len(argv):
        a = argv[i]
        if not opts_done and a == "--":
            opts_done = True
        elif not opts_done and a == "-f" and i + 1 < len(argv):
            sender = argv[i + 1]
            i += 1
        elif not opts_done and a.startswith("-f") and len(a) > 2:
            sender = a[2:]
        elif not opts_done and a.startswith("-"):
            pass
        else:
            rcpts.append(a)
        i += 1
    if sender in ("", "<>"):
        sender = ""
    env = f"from=<{sender}> to=<{','.join(rcpts)}>" if sender is not None else \
        f"from=NONE to=<{','.join(rcpts)}>"
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    auto = _hval(msg, "Auto-Submitted")
    ct = msg.get_content_type()
    if ct == "multipart/report" and auto.lower().startswith("auto-replied (rejected)"):
        # Pigeonhole's rejection MDN (RFC 5429 2.2.1): the reason is the
        # first text part after its "... was automatically rejected:" line
        t = (_texts(msg) or [""])[0]
        m = re.match(r"[^\n]*rejected:[ \t]*(?:\n|$)", t)
        reason = t[m.end():] if m else t
        return (f"send reject-mdn {env} | To: {_addrs(msg, 'To')} "
                f"| mime={_mime(msg)} | reason={_q(_reason(reason))}")
    if auto.lower().startswith("auto-replied"):
        text = "\n--\n".join(_texts(msg))
        return ("send vacation " + env +
                f" | To: {_addrs(msg, 'To')} | From: {_addrs(msg, 'From')}"
                f" | Subject: {_decoded(msg, 'Subject')} | Auto-Submitted: {auto}"
                f" | In-Reply-To: {_hval(msg, 'In-Reply-To')}"
                f" | References: {_hval(msg, 'References')}"
                f" | mime={_mime(msg)} | text={_sha(text.encode())} {text[:60]!r}")
    if ct == "multipart/report":
        return (f"send report {env} type={msg.get_param('report-type')} "
                f"| To: {_addrs(msg, 'To')} | Subject: {_decoded(msg, 'Subject')} "
                f"| mime={_mime(msg)} | text={_texts(msg)[:1]!r}")
    body = strip_trace(data.replace(b"\r\n", b"\n"), REDIRECT_TRACE_FIELDS)
    mid = "yes" if msg.get("Message-ID") is not None else "no"
    return f"send redirect {env} mid={mid} body={_sha(body)} len={len(body)}"


def read_calls(out):
    calls = []
    for name in sorted(os.listdir(out)):
        p = os.path.join(out, name)
        try:
            with open(os.path.join(p, "argv"), "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0")[:-1]]
            with open(os.path.join(p, "stdin"), "rb") as f:
                data = f.read()
        except OSError as e:
            calls.append(f"send BROKEN {e}")
            continue
        calls.append(parse_call(argv, data))
    return calls


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def compile_errors(d, side):
    """`log compile-error "NAME"` for each script the side's log says does
    not compile (NAME: the file name; the detail must be logged too, else
    `(no detail)` follows).  dovecot-lda: its log names the script and the
    errors are in the script's own log (sieve_user_log, SCRIPT.log) or its
    log; homemail-deliver: its syslog lines (run_hm)."""
    out = []
    if side == "lda":
        log = _read(os.path.join(d, "lda", "log"))
        for m in re.finditer(r"[Ff]ailed to compile script `([^']+)'", log):
            path = m.group(1)
            detail = _read(path + ".log") + log
            # the user log: `script: line 2: error: ...`; a global script's
            # errors are in the log: `Error: sieve: before: line 1: ...`
            ok = re.search(r"(?m)^\S+: (line \d+: )?error: |: Error: sieve: \S+: ", detail)
            out.append(f"log compile-error {_q(os.path.basename(path))}"
                       + ("" if ok else " (no detail)"))
    else:
        log = _read(os.path.join(d, "hmd", "syslog"))
        for m in re.finditer(r"sieve: script (\S+) does not compile", log):
            path = m.group(1)
            ok = re.search(r"sieve: compile error: " + re.escape(path) + r":\d+:\d+: error: ", log)
            out.append(f"log compile-error {_q(os.path.basename(path))}"
                       + ("" if ok else " (no detail)"))
    return sorted(out)


def side_outcome(ws, home, rc, err):
    """The canonical lines of one side (see the module doc)."""
    lines = [f"exit {rc}"]
    if rc == 77:
        reason = err.decode("utf-8", "replace").strip()
        reason = re.sub(r"^homemail-deliver:( |$)", "", reason)
        lines.append(f"reject {_q(_reason(reason))}")
    folders, msgs = read_maildir(ws, home)
    lines += sorted(f"folder {_q(f)}" for f in folders)
    ml = []
    for folder, flags, raw in msgs:
        body = strip_trace(raw)
        fl = " ".join(sievediff.norm_flags(flags))
        ml.append(f"msg {_q(folder)} flags={_q(fl)} body={_sha(body)} len={len(body)}")
    lines += sorted(ml)
    lines += sorted(read_calls(os.path.join(home, "out")))
    return lines


# Normalisations that a README deviation row explains; a case listed in
# DEVIATIONS with that row is compared after them (so the rest of the
# outcome must still be equal).  A case whose row has no entry here
# records the difference itself (`diff=FINGERPRINT` after the row number,
# written by --refresh-lists): any other difference fails it.
def _dev_reject(lines):
    """Row 9: Pigeonhole's lda sends the rejection itself (an MDN to the
    sender, exit 0); homemail-deliver -e exits 77 with the reason and Exim
    bounces.  Both become `exit rejected` + `reject "REASON"`."""
    out = []
    mdn = [x for x in lines if x.startswith("send reject-mdn ")]
    for x in lines:
        if x in ("exit 77",) or (x == "exit 0" and mdn):
            out.append("exit rejected")
        elif x.startswith("send reject-mdn "):
            out.append("reject " + x.split(" | reason=", 1)[1])
        else:
            out.append(x)
    return sorted(out[:1]) + sorted(out[1:])


DEVIATION_NORMALISE = {9: _dev_reject}


class Result:
    def __init__(self, case, lda, hm, raw):
        self.case = case
        self.lda = lda          # canonical lines
        self.hm = hm
        self.raw = raw          # stderr / logs of both, for -v
        # only stored/discarded (0) and rejected (77) are outcomes here: an
        # exit 75 (deferred), 1 (the harness broke) or a signal on both
        # sides is never an agreement
        self.error = [x for x in lda[:1] + hm[:1] if not re.fullmatch(r"exit (0|77)", x)]
        self.agree = lda == hm and not self.error

    def fingerprint(self):
        """A short hash of what differs (both sides' lines that the other
        lacks): a KNOWN entry records it, so a known case that starts to
        differ in another way as well is caught."""
        a, b = set(self.lda), set(self.hm)
        d = sorted("-" + x for x in a - b) + sorted("+" + x for x in b - a)
        return _sha("\n".join(d).encode())

    def diff(self):
        import difflib
        return "\n".join(difflib.unified_diff(self.lda, self.hm, "dovecot-lda", "homemail-deliver",
                                              n=0, lineterm=""))


def run_case(ws, case, hm_binary=None, hm_script=None):
    """Deliver one case both ways; returns a Result."""
    d = ws.case_dir(case)
    if hm_script is not None:
        p = os.path.join(d, "hm", "script-alt.sieve")
        with open(p, "w", encoding="utf-8") as f:
            f.write(hm_script)
        os.chown(p, ws.user.uid, ws.user.gid)
        hm_script = p
    pre = [x.strip() for x in case.files.get(PRECREATE, "").split("\n") if x.strip()]
    for side in ("lda", "hmd"):
        if pre:
            precreate(ws, os.path.join(d, side), pre)
    rc1, _, e1 = run_lda(ws, d, case)
    rc2, _, e2 = run_hm(ws, d, case, hm_binary, hm_script)
    try:
        lda = side_outcome(ws, os.path.join(d, "lda"), rc1, e1) + compile_errors(d, "lda")
        hm = side_outcome(ws, os.path.join(d, "hmd"), rc2, e2) + compile_errors(d, "hmd")
    except (RuntimeError, OSError) as e:
        lda, hm = [f"ERROR {e}"], ["(not read)"]
    log = _read(os.path.join(d, "lda", "log"))[-3000:]
    raw = (f"--- dovecot-lda stderr:\n{e1.decode(errors='replace')}\n--- its log:\n{log}"
           f"\n--- homemail-deliver stderr:\n{e2.decode(errors='replace')}"
           f"\n--- its syslog:\n{_read(os.path.join(d, 'hmd', 'syslog'))[-3000:]}\n--- dir {d}")
    r = Result(case, lda, hm, raw)
    if case.fails:
        # a script both engines refuse: each side must log it (with the
        # detail), else the case is an error even when the outcomes agree
        want = 'log compile-error "script.sieve"'
        r.error += [f"{side}: no {want!r} line" for side, lines in (("lda", lda), ("hm", hm))
                    if want not in lines]
        r.agree = r.agree and not r.error
    return r


def _run_case_safe(ws, case, **kw):
    """run_case; a harness failure (doveadm, a timeout) is the case's
    failure, never the whole run's."""
    try:
        return run_case(ws, case, **kw)
    except Exception as e:  # noqa: BLE001 - reported as the case's outcome
        r = Result(case, [f"HARNESS ERROR {type(e).__name__}: {e}"], ["(not run)"], "")
        r.error = r.lda
        r.agree = False
        return r


def run_all(ws, cases, workers=3, **kw):
    """Every case, in parallel: {id: Result}."""
    res = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        futs = {ex.submit(_run_case_safe, ws, c, **kw): c for c in cases}
        for f in concurrent.futures.as_completed(futs):
            res[futs[f].id] = f.result()
    return res


# ---------------------------------------------------------------------
# Verdicts
def _recorded(text):
    """The diff= fingerprint a KNOWN or DEVIATIONS entry records, or None."""
    m = re.search(r"(?:^|\s)diff=([0-9a-f]{12})(?:\s|$)", text)
    return m.group(1) if m else None


def classify(results, known, deviations):
    """{id: status}: agree | deviation (listed, differs) | known (listed,
    differs as recorded: a KNOWN entry and a DEVIATIONS entry whose row has
    no normalisation carry `diff=FINGERPRINT`) | UNEXPECTED (differs, not
    listed) | CHANGED-KNOWN / CHANGED-DEVIATION (listed, but differs in
    another way now, or records no fingerprint) | STALE-KNOWN /
    STALE-DEVIATION (listed, but agrees now: take it out of the list)."""
    st = {}
    for cid, r in results.items():
        row = deviations.get(cid)
        norm = DEVIATION_NORMALISE.get(int(row.split()[0])) if row else None
        if norm and not r.error:
            r.dev_agree = norm(r.lda) == norm(r.hm)
            if r.dev_agree:
                st[cid] = "deviation"
                continue
        if r.agree:
            st[cid] = ("STALE-KNOWN" if cid in known else
                       "STALE-DEVIATION" if cid in deviations else "agree")
        elif cid in deviations and cid not in known and not norm and not r.error:
            # a row without a normalisation: the difference recorded, no other
            st[cid] = ("deviation" if _recorded(deviations[cid]) == r.fingerprint()
                       else "CHANGED-DEVIATION")
        elif cid in known:
            st[cid] = "known" if _recorded(known[cid]) == r.fingerprint() else "CHANGED-KNOWN"
        else:
            st[cid] = "UNEXPECTED"
    return st


def summary(cases, results, status, known, deviations):
    """The printed report: per group and in total `agree N/M`, then one
    short diff per disagreeing case."""
    groups = {}
    for c in cases:
        groups.setdefault(group_of(c), []).append(c)
    out = []
    for g, cs in groups.items():
        n = sum(1 for c in cs if status[c.id] == "agree")
        extra = {}
        for c in cs:
            if status[c.id] != "agree":
                extra[status[c.id]] = extra.get(status[c.id], 0) + 1
        tail = (" (" + ", ".join(f"{v} {k}" for k, v in sorted(extra.items())) + ")") if extra else ""
        out.append(f"  {g}: agree {n}/{len(cs)}{tail}")
    n = sum(1 for c in cases if status[c.id] == "agree")
    counts = {}
    for c in cases:
        counts[status[c.id]] = counts.get(status[c.id], 0) + 1
    out.insert(0, f"deliver-diff: agree {n}/{len(cases)} "
               + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()) if k != "agree"))
    for c in cases:
        s = status[c.id]
        if s == "agree":
            continue
        why = known.get(c.id) or (f"deviation #{deviations[c.id]}" if c.id in deviations else "")
        out.append(f"{s} {c.id} ({c.src}) {why}")
        if s in ("known", "UNEXPECTED", "CHANGED-KNOWN", "CHANGED-DEVIATION"):
            out.extend("    " + x for x in results[c.id].diff().split("\n")[2:])
            out.extend(f"    error: {x}" for x in results[c.id].error)
    return "\n".join(out)


def refresh_list(path, results, deviations=False):
    """Write the current diff fingerprint into each entry of KNOWN (before
    the reason) or DEVIATIONS (after the row number, for rows without a
    normalisation); comments and reasons stay."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cid, _, rest = line.rstrip("\n").partition(" ")
            rest = re.sub(r"(^|\s)diff=[0-9a-f]{12}(?=\s|$)", "", rest).strip()
            if line.startswith("#") or not line.strip() or cid not in results \
                    or results[cid].agree or \
                    (deviations and DEVIATION_NORMALISE.get(int(rest.split()[0]))):
                out.append(line.rstrip("\n"))
                continue
            fp = f"diff={results[cid].fingerprint()}"
            out.append(f"{cid}  {rest} {fp}" if deviations else f"{cid}  {fp}  {rest}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def main(argv=None):
    """`deliverdiff.py [-v] [PATTERN]`: run the cases (as a fresh test
    user) and print the summary."""
    import argparse
    import hmtest
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-v", action="store_true", help="raw output of disagreeing cases")
    ap.add_argument("-j", type=int, default=3)
    ap.add_argument("--refresh-lists", action="store_true",
                    help="rewrite the diff= fingerprints in KNOWN and DEVIATIONS (reasons and comments stay)")
    ap.add_argument("pattern", nargs="?", default="")
    a = ap.parse_args(argv)
    old, new = load_cases()
    cases = [c for c in old + new if a.pattern in c.id]
    known = read_list(os.path.join(CASE_DIR, "KNOWN"), "KNOWN")
    devs = read_list(os.path.join(CASE_DIR, "DEVIATIONS"), "DEVIATIONS")
    user = hmtest.make_user(prefix="hmdd")
    ws = Workspace(user)
    try:
        t0 = time.monotonic()
        res = run_all(ws, cases, workers=a.j)
        el = time.monotonic() - t0
        st = classify(res, known, devs)
        print(summary(cases, res, st, known, devs))
        if a.v:
            for c in cases:
                if not res[c.id].agree:
                    print(f"=== {c.id}\n{c.script}\n{res[c.id].raw}")
        print(f"{len(cases)} cases in {el:.1f} s")
        if a.refresh_lists and not a.pattern:
            refresh_list(os.path.join(CASE_DIR, "KNOWN"), res)
            refresh_list(os.path.join(CASE_DIR, "DEVIATIONS"), res, deviations=True)
    finally:
        ws.close()


if __name__ == "__main__":
    main()
