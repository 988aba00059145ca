"""sievediff — the differential Sieve runner shared by the pytest suite
(test_sieve_diff.py), the benchmark (bench/sieve/run) and the command line.

It reads the case files in tests/sieve-diff/ (format: docs/sieve-testing.md
and tests/sieve-diff/README), runs every case through Pigeonhole's
`sieve-test` (the reference, always live: no expected result is stored
anywhere) and through `build/homemail-sieve test`, and turns both outputs
into the outcome lines fixed in design.md:

    store "FOLDER" [flags="..."] | redirect "ADDRESS" | reject "REASON"
    vacation to="ADDRESS" subject="..." seconds=N | discard

Normalisation of Pigeonhole's report (each rule is here, and in the doc):
  N1  "Performed actions" items, in order, then the "Implicit keep" item
      (left out when a performed item already stores into INBOX: executed,
      Pigeonhole stores there once, as sieve-test -e shows).
      `store message in folder: F` -> store "F"; `+ add IMAP flags: ...`
      -> flags; `redirect message to: <A>` -> redirect "A";
      `reject message with reason: R` -> reject "R".
  N2  Items without an outcome in design.md are dropped: `track duplicate`
      and `track last duplicate ...` (duplicate ext), `+ preserve implicit keep` (:copy; the implicit keep
      appears on its own), `+ create mailbox if it does not exist`
      (mailbox :create; homemail always creates, issue 3).
  N3  `discard` is printed once, last, exactly when there is no store,
      redirect or reject line (design.md); any discard line of the engine
      is moved to the end the same way before comparing.
  N4  Vacation: the report does not apply RFC 5230/3834 suppression (that
      happens when the action is committed), so every case whose report
      holds a vacation action is run a second time with `-e` (real
      execution, into a throw-away Maildir with the stored folders
      pre-created, since sieve-test cannot autocreate).  "sent vacation
      response to <A>" gives to="A" and the reply's Subject header (RFC 2047
      decoded) gives subject; "discarding vacation response" drops the line.
      Trailing white space of a subject is not compared ("Auto: " for an
      empty Subject is written "Subject: Auto: ").
      seconds comes from the report (Pigeonhole clamps to its default
      1 day .. 90 days window).
  N5  A runtime failure ("final result: failed; resolved with successful
      implicit keep") is the outcome `store "INBOX"` (Pigeonhole discards the
      script's actions and keeps the message; so must homemail, issue 3).
  N6  Folder names are compared exactly, except that Pigeonhole's report
      keeps the script's spelling of a lone `fileinto "inbox"` while Dovecot
      stores it in INBOX (RFC 3501 5.1): a reference folder "inbox" in any
      case reads "INBOX".  homemail-sieve must print "INBOX" itself (its
      store target is normalised); "inbox" from it differs.  Flags are a set: system
      flags case-insensitively (\\Seen), keywords exactly; both sides
      sorted.  homemail-sieve must print flags as IMAP names, unescaped and
      space separated (flags="\\Seen Work"); anything else is unparseable.
  N7  Reject reasons: Pigeonhole prints control characters as '?' (CRLF ->
      "??"); both sides are reduced to one form: every CR LF / LF / '??'
      -> '?', other control characters -> '?'; Pigeonhole truncates the
      printed reason (str_sanitize, 128 chars + "..."), so a truncated
      reference is compared as a prefix.
  N8  `ereject` is not in Pigeonhole 0.5.19: for the reference run the
      token `ereject` is replaced by `reject` (RFC 5429 sec. 2.1: in an
      LDA, which cannot refuse at SMTP time, ereject acts as reject).
  N9  A case marked `fails: both` must be refused by sieve-test (exit != 0
      before any report) and by homemail-sieve cleanly: exit code 1 (its
      documented "compile error"), no signal, no sanitizer report, nothing
      on stdout and a `FILE:LINE:COL: error:` line on stderr.  A sanitizer
      report on stderr fails an accepted case too.
  N10 A case marked `deviation: N` covers row N of README's table of
      deliberate differences: it passes only when sieve-test's outcome
      differs from homemail-sieve's (the difference is real and still
      there) and homemail-sieve's equals the case's `--- homemail` block
      (normalised like its output, so the difference is the listed one).

Both programs get the same envelope (-f, -r, -a), the same time
(sieve-test through libfaketime, frozen; homemail-sieve through --now) and
TZ=UTC.  sieve-test runs as nobody (it refuses root) with a private config
(tests/sieve-diff/pigeonhole.conf rendered per run) whose sieve_extensions
is exactly issue 3's list, so an extension outside it fails in both.
"""
import concurrent.futures
import email.header
import os
import re
import shlex
import shutil
import subprocess
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASE_DIR = os.path.join(TOP, "tests", "sieve-diff")
MSG_DIR = os.path.join(CASE_DIR, "messages")
HM_SIEVE = os.environ.get("HM_SIEVE") or os.path.join(TOP, "build", "homemail-sieve")
SIEVE_TEST = "/usr/bin/sieve-test"
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

# The one fixed "now" of the suite (UTC).  Date cases are written around it.
NOW_FAKETIME = "2026-03-15 12:00:00"
NOW_ISO = "2026-03-15T12:00:00Z"
NOW_EPOCH = 1773576000

DEFAULT_FROM = "sender@example.org"
DEFAULT_TO = "user@home.com.bo"

EXTENSIONS = ("fileinto envelope copy imap4flags vacation vacation-seconds "
              "reject relational subaddress body variables mailbox date "
              "index regex include duplicate encoded-character "
              "comparator-i;ascii-numeric")

PIGEONHOLE_CONF = """\
# private config for the differential suite (rendered by sievediff.py)
mail_location = maildir:{maildir}
import_environment = TZ LD_PRELOAD FAKETIME FAKETIME_DISABLE_SHM
plugin {{
  sieve_extensions = {ext}
}}
"""


class Case:
    """One (script, message, envelope) triple."""

    def __init__(self, cid, group, script, files, message, env, fails, desc, src,
                 deviation=None, expect=None):
        self.id = cid              # "file/group/label"
        self.group = group
        self.script = script       # str, the main script
        self.files = files         # {name: text} other scripts (include)
        self.message = message     # bytes
        self.env = env             # {"from","to","orig"}
        self.fails = fails         # True: both must refuse the script
        self.desc = desc
        self.src = src             # "file:line" of the msg block
        self.deviation = deviation # README deviation row (N10) or None
        self.expect = expect       # homemail's outcome lines for a deviation

    def __repr__(self):
        return f"Case({self.id})"


# ---------------------------------------------------------------------
# Case files
_HDR = re.compile(r"^=== (\S+)\s*$")
_BLK = re.compile(r"^--- (script|file|msg|homemail)\b(.*)$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _kv(text, where):
    """Parse `k=v k2="v 2"` words; returns dict (label under key '')."""
    out = {}
    for w in shlex.split(text):
        if "=" in w:
            k, v = w.split("=", 1)
            out[k] = v
        elif "" not in out:
            out[""] = w
        else:
            raise ValueError(f"{where}: stray word {w!r}")
    return out


def _block_text(lines):
    """Lines of a block -> text with '\\n' endings, trailing blank lines cut."""
    while lines and lines[-1].strip() == "":
        lines = lines[:-1]
    return "".join(l + "\n" for l in lines)


def parse_file(path, case_dir=None):
    """Parse one .cases file into a list of Case."""
    rel = os.path.relpath(path, case_dir or CASE_DIR)
    stem = rel[:-len(".cases")]
    with open(path, encoding="utf-8") as f:
        raw = f.read().split("\n")
    groups = []
    cur = None
    blk = None
    for no, line in enumerate(raw, 1):
        m = _HDR.match(line)
        b = _BLK.match(line)
        if m:
            cur = {"name": m.group(1), "script": None, "files": {}, "msgs": [],
                   "fails": False, "desc": "", "env": {}, "line": no,
                   "deviation": None, "expect": None}
            if not _NAME.match(cur["name"]):
                raise ValueError(f"{rel}:{no}: bad case name")
            groups.append(cur)
            blk = None
            continue
        if cur is None:
            if line.strip() and not line.startswith("#"):
                raise ValueError(f"{rel}:{no}: text outside a case")
            continue
        if b:
            kind, rest = b.group(1), b.group(2).strip()
            blk = {"kind": kind, "args": _kv(rest, f"{rel}:{no}"), "lines": [], "line": no}
            if kind == "script":
                if cur["script"] is not None:
                    raise ValueError(f"{rel}:{no}: two scripts")
                cur["script"] = blk
            elif kind == "file":
                cur["files"][blk["args"][""]] = blk
            elif kind == "homemail":
                cur["expect"] = blk
            else:
                cur["msgs"].append(blk)
            continue
        if blk is None:
            # header lines of a group
            if not line.strip() or line.startswith("#"):
                continue
            k, _, v = line.partition(":")
            k = k.strip()
            v = v.strip()
            if k == "desc":
                cur["desc"] = v
            elif k == "fails":
                if v != "both":
                    raise ValueError(f"{rel}:{no}: fails: must be 'both'")
                cur["fails"] = True
            elif k == "env":
                cur["env"] = _kv(v, f"{rel}:{no}")
            elif k == "deviation":
                if not v.isdigit():
                    raise ValueError(f"{rel}:{no}: deviation: needs README's row number")
                cur["deviation"] = v
            else:
                raise ValueError(f"{rel}:{no}: unknown header {k!r}")
            continue
        blk["lines"].append(line)
    cases = []
    for g in groups:
        where = f"{rel}:{g['line']}"
        if g["script"] is None:
            raise ValueError(f"{where}: no script")
        if not g["msgs"]:
            raise ValueError(f"{where}: no msg")
        if (g["deviation"] is None) != (g["expect"] is None):
            raise ValueError(f"{where}: deviation: and --- homemail go together")
        expect = None
        if g["expect"] is not None:
            expect = parse_hm(_block_text(g["expect"]["lines"]))
            if any(l.startswith("UNPARSEABLE") for l in expect):
                raise ValueError(f"{where}: --- homemail: {expect}")
        script = _block_text(g["script"]["lines"])
        files = {n: _block_text(b["lines"]) for n, b in g["files"].items()}
        labels = set()
        for mb in g["msgs"]:
            a = dict(g["env"])
            a.update(mb["args"])
            label = a.pop("", None)
            if not label or not _NAME.match(label) or label in labels:
                raise ValueError(f"{rel}:{mb['line']}: msg needs a unique label")
            labels.add(label)
            if "file" in a:
                if any(l.strip() for l in mb["lines"]):
                    raise ValueError(f"{rel}:{mb['line']}: file= and inline text")
                with open(os.path.join(MSG_DIR, a.pop("file")), "rb") as f:
                    msg = f.read()
            else:
                msg = _block_text(mb["lines"]).encode("utf-8")
                if not msg:
                    raise ValueError(f"{rel}:{mb['line']}: empty message")
            env = {"from": a.pop("from", DEFAULT_FROM), "to": a.pop("to", DEFAULT_TO)}
            env["orig"] = a.pop("orig", env["to"])
            if a:
                raise ValueError(f"{rel}:{mb['line']}: unknown keys {sorted(a)}")
            cases.append(Case(f"{stem}/{g['name']}/{label}", g["name"], script, files,
                              msg, env, g["fails"], g["desc"], f"{rel}:{mb['line']}",
                              g["deviation"], expect))
    return cases


def load_cases(case_dir=CASE_DIR):
    """All cases of all *.cases files, in file order; ids are unique."""
    out = []
    for fn in sorted(os.listdir(case_dir)):
        if fn.endswith(".cases"):
            out.extend(parse_file(os.path.join(case_dir, fn), case_dir))
    ids = set()
    for c in out:
        if c.id in ids:
            raise ValueError(f"duplicate case id {c.id}")
        ids.add(c.id)
    return out


# ---------------------------------------------------------------------
# Work directories
class Workspace:
    """A temp tree readable by nobody: one dir per case (script, extra
    scripts, message) plus the Pigeonhole config.  Removed by close()."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="hm-sievediff-")
        os.chmod(self.root, 0o755)
        self.conf = os.path.join(self.root, "pigeonhole.conf")
        with open(self.conf, "w") as f:
            f.write(PIGEONHOLE_CONF.format(maildir=os.path.join(self.root, "nomail"),
                                           ext=EXTENSIONS))
        os.chmod(self.conf, 0o644)
        # An empty Maildir, so that INBOX exists for mailboxexists (a
        # delivery always has an INBOX; homemail-sieve assumes one too).
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.root, "nomail", sub))
        _chown_tree(os.path.join(self.root, "nomail"))
        self.n = 0
        import pwd
        pw = pwd.getpwnam("nobody")
        # sieve-test refuses root: run it as nobody.
        self.run_as = (pw.pw_uid, pw.pw_gid) if os.geteuid() == 0 else None
        # Dovecot's settings, parsed once (what doveconf hands a tool it execs).
        p = subprocess.run(["doveconf", "-c", self.conf, "-e", "/usr/bin/env", "-0"],
                           capture_output=True, env={"PATH": "/usr/bin:/bin"}, check=True)
        self.doveconf_env = {}
        for item in p.stdout.split(b"\0"):
            if b"=" in item:
                k, v = item.split(b"=", 1)
                self.doveconf_env[k.decode()] = v.decode()
        if self.doveconf_env.get("DOVECONF_ENV") != "1":
            raise RuntimeError("doveconf -e did not hand over its settings")

    def case_dir(self, case):
        """Write the case's files into a fresh directory; returns its path."""
        self.n += 1
        d = os.path.join(self.root, f"c{self.n:04d}")
        os.mkdir(d)
        with open(os.path.join(d, "script.sieve"), "w", encoding="utf-8") as f:
            f.write(case.script)
        for name, text in case.files.items():
            with open(os.path.join(d, name), "w", encoding="utf-8") as f:
                f.write(text)
        with open(os.path.join(d, "message.eml"), "wb") as f:
            f.write(case.message)
        ref = os.path.join(d, "ref")
        os.mkdir(ref)
        # Reference copy: ereject -> reject (N8).
        for name in ["script.sieve"] + list(case.files):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                text = f.read()
            with open(os.path.join(ref, name), "w", encoding="utf-8") as f:
                f.write(re.sub(r"\bereject\b", "reject", text))
        _chown_tree(d)
        return d

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


def _chown_tree(d):
    """Give a case directory to nobody (sieve-test writes .svbin files)."""
    import pwd
    pw = pwd.getpwnam("nobody")
    for base, dirs, files in os.walk(d):
        for n in [base] + [os.path.join(base, x) for x in dirs + files]:
            if os.geteuid() == 0:
                os.chown(n, pw.pw_uid, pw.pw_gid)
            os.chmod(n, 0o755 if os.path.isdir(n) else 0o644)


# ---------------------------------------------------------------------
# Reference: sieve-test
def _sieve_test_cmd(ws, d, case, execute=False, maildir=None):
    """(argv, env, (uid, gid) or None) for one sieve-test run.  The
    settings come from ws.doveconf_env (DOVECONF_ENV: read once by doveconf,
    so sieve-test does not re-exec itself through doveconf every time) and
    sieve-test is started as nobody directly (no setpriv/env processes):
    one exec per run instead of five."""
    env = dict(ws.doveconf_env)
    env.update({"TZ": "UTC", "LD_PRELOAD": FAKETIME_LIB, "FAKETIME_DISABLE_SHM": "1",
                "FAKETIME": NOW_FAKETIME, "PATH": "/usr/bin:/bin"})
    cmd = [SIEVE_TEST, "-C",
           "-o", f"plugin/sieve=file:{os.path.join(d, 'ref')}",
           "-o", f"plugin/sieve_global={os.path.join(d, 'ref')}",
           "-f", case.env["from"], "-r", case.env["to"], "-a", case.env["orig"]]
    if execute:
        cmd += ["-e", "-o", f"mail_location=maildir:{maildir}:LAYOUT=fs"]
    cmd += [os.path.join(d, "ref", "script.sieve"), os.path.join(d, "message.eml")]
    return cmd, env, ws.run_as


def parse_report(out):
    """Pigeonhole's non-executing report -> (items, implicit) where items is
    a list of dicts {kind, ...} (N1, N2)."""
    items = []
    section = None
    cur = None
    lines = out.split("\n")
    i = 0
    in_msg = False
    while i < len(lines):
        line = lines[i]
        i += 1
        if in_msg:
            if line == "END MESSAGE":
                in_msg = False
            continue
        if line == "Performed actions:":
            section = "perf"
            continue
        if line == "Implicit keep:":
            section = "keep"
            continue
        if section is None:
            continue
        if line == "START MESSAGE":
            in_msg = True
            continue
        m = re.match(r"^ \* (.*)$", line)
        if m:
            what = m.group(1)
            cur = {"section": section}
            if what.startswith("store message in folder: "):
                folder = what[len("store message in folder: "):]
                if folder.upper() == "INBOX":
                    folder = "INBOX"                                  # N6
                cur.update(kind="store", folder=folder, flags=[])
            elif what.startswith("redirect message to: "):
                a = what[len("redirect message to: "):]
                if a.startswith("<") and a.endswith(">"):
                    a = a[1:-1]
                cur.update(kind="redirect", addr=a)
            elif what.startswith("reject message with reason: "):
                cur.update(kind="reject", reason=what[len("reject message with reason: "):])
            elif what == "discard":
                cur.update(kind="discard")
            elif what.startswith("send vacation message"):
                cur.update(kind="vacation", seconds=None, subject=None)
            elif what.startswith("track ") and "duplicate" in what:
                cur.update(kind="ignore")
            else:
                raise ValueError(f"unknown Pigeonhole action line: {line!r}")
            items.append(cur)
            continue
        m = re.match(r"^\s+\+ (.*)$", line)
        if m and cur is not None:
            sub = m.group(1)
            if sub.startswith("add IMAP flags: ") and cur.get("kind") == "store":
                cur["flags"] += sub[len("add IMAP flags: "):].split()
            elif sub in ("preserve implicit keep", "create mailbox if it does not exist"):
                pass
            else:
                raise ValueError(f"unknown Pigeonhole action detail: {line!r}")
            continue
        m = re.match(r"^\s+=> (\w+)\s*: (.*)$", line)
        if m and cur is not None and cur.get("kind") == "vacation":
            if m.group(1) == "seconds":
                cur["seconds"] = int(m.group(2))
            continue
    # N1: the report lists the implicit keep even when a performed action
    # already stores into INBOX (fileinto :copy "INBOX"); executed
    # (sieve-test -e), Pigeonhole stores the message there once.
    if any(it.get("kind") == "store" and it["section"] == "perf" and it["folder"] == "INBOX"
           for it in items):
        items = [it for it in items if not (it.get("kind") == "store" and
                                            it["section"] == "keep" and it["folder"] == "INBOX")]
    return items


_SYSFLAGS = {"\\seen": "\\Seen", "\\answered": "\\Answered", "\\flagged": "\\Flagged",
             "\\deleted": "\\Deleted", "\\draft": "\\Draft", "\\recent": "\\Recent"}


def norm_flags(flags):
    """N6: a sorted, de-duplicated flag list, system flags capitalised."""
    s = set()
    for f in flags:
        s.add(_SYSFLAGS.get(f.lower(), f))
    return sorted(s)


def norm_reason(r):
    """N7: one form for reject reasons on both sides."""
    r = r.replace("\r\n", "\n").replace("??", "?")
    return "".join("?" if (ord(ch) < 32 or ord(ch) == 127) else ch for ch in r)


def _q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def outcome_lines(items):
    """Canonical outcome from a list of {kind,...} (N3, N6)."""
    out = []
    decisive = False
    for it in items:
        k = it["kind"]
        if k == "store":
            folder = it["folder"]
            fl = norm_flags(it.get("flags", []))
            out.append(f"store {_q(folder)}" + (f" flags={_q(' '.join(fl))}" if fl else ""))
            decisive = True
        elif k == "redirect":
            out.append(f"redirect {_q(it['addr'])}")
            decisive = True
        elif k == "reject":
            out.append(f"reject {_q(norm_reason(it['reason']))}")
            decisive = True
        elif k == "vacation":
            subj = it["subject"].rstrip(" \t")
            out.append(f"vacation to={_q(it['to'])} subject={_q(subj)} "
                       f"seconds={it['seconds']}")
    if not decisive:
        out.append("discard")
    return out


def _decode_subject(raw):
    """RFC 2047-decode an unfolded Subject value."""
    parts = []
    for text, cs in email.header.decode_header(raw):
        if isinstance(text, bytes):
            parts.append(text.decode(cs or "ascii", "replace"))
        else:
            parts.append(text)
    return "".join(parts)


def mutf7(name):
    """RFC 3501 modified UTF-7 (how Dovecot names folder directories)."""
    import base64
    out, buf = [], []

    def flush():
        if buf:
            b = base64.b64encode("".join(buf).encode("utf-16-be")).decode()
            out.append("&" + b.rstrip("=").replace("/", ",") + "-")
            buf.clear()
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def _vacation_from_exec(out, err):
    """From an `-e` run: (to, subject) if a reply was sent, None if it was
    suppressed; raises if neither is visible (N4)."""
    m = re.search(r"vacation action: sent vacation response to <([^>]*)>", err)
    if not m:
        if re.search(r"vacation action: (discard|not sending)", err, re.I):
            return None
        raise ValueError("sieve-test -e shows neither a sent nor a discarded "
                         "vacation response:\n" + err[-2000:])
    to = m.group(1)
    # The outgoing reply is on stdout; find the header block that carries
    # Pigeonhole's vacation Auto-Submitted marker.
    subject = None
    blocks = re.split(r"(?m)^(?=X-Sieve: Pigeonhole)", out)
    for b in blocks:
        hdr = b.split("\n\n", 1)[0]
        if re.search(r"(?mi)^Auto-Submitted: auto-replied \(vacation\)", hdr):
            unf = re.sub(r"\r?\n[ \t]", " ", hdr)
            sm = re.search(r"(?mi)^Subject: ?(.*)$", unf)
            if sm:
                subject = _decode_subject(sm.group(1).strip())
            break
    if subject is None:
        raise ValueError("sieve-test -e: vacation reply without Subject:\n" + out[-2000:])
    return to, subject


class RefResult:
    def __init__(self, ok, lines, raw, rc):
        self.ok = ok            # False: sieve-test refused the script
        self.lines = lines      # canonical outcome lines (None when not ok)
        self.raw = raw          # raw output for messages
        self.rc = rc


def _run(cmd, timeout=30, env=None, run_as=None):
    kw = {}
    if run_as is not None:
        kw = {"user": run_as[0], "group": run_as[1], "extra_groups": []}
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, **kw)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def run_reference(ws, d, case):
    """Run sieve-test on one prepared case dir; returns RefResult."""
    cmd, env, run_as = _sieve_test_cmd(ws, d, case)
    rc, out, err = _run(cmd, env=env, run_as=run_as)
    raw = f"$ sieve-test (rc={rc})\n{out}{err}"
    if "Performed actions:" not in out:
        if re.search(r"final result: failed; resolved with successful implicit keep", err):
            return RefResult(True, ["store \"INBOX\""], raw, rc)          # N5
        return RefResult(False, None, raw, rc)
    items = parse_report(out)
    if any(it["kind"] == "vacation" for it in items):
        md = os.path.join(d, "maildir")
        os.mkdir(md)
        for it in items:
            if it["kind"] == "store" and it["folder"].upper() != "INBOX":
                p = md
                for part in it["folder"].split("/"):
                    p = os.path.join(p, mutf7(part))
                for sub in ("cur", "new", "tmp"):
                    os.makedirs(os.path.join(p, sub), exist_ok=True)
        _chown_tree(md)
        cmd, env, run_as = _sieve_test_cmd(ws, d, case, execute=True, maildir=md)
        rc2, out2, err2 = _run(cmd, env=env, run_as=run_as)
        raw += f"\n$ sieve-test -e (rc={rc2})\n{out2}{err2}"
        kept = []
        for it in items:
            if it["kind"] == "vacation":
                v = _vacation_from_exec(out2, err2)
                if v is None:
                    continue
                it["to"], it["subject"] = v
            kept.append(it)
        items = kept
    return RefResult(True, outcome_lines(items), raw, rc)


# ---------------------------------------------------------------------
# homemail-sieve
def hm_cmd(d, case, binary=HM_SIEVE, message=None):
    """argv of `homemail-sieve test` on the case dir d (script.sieve, and
    message.eml unless message names another file)."""
    return [binary, "test", os.path.join(d, "script.sieve"),
            message or os.path.join(d, "message.eml"),
            "-f", case.env["from"], "-r", case.env["to"], "-a", case.env["orig"],
            "--now", NOW_ISO, "--global-dir", d]


_Q = r'"((?:[^"\\]|\\.)*)"'
# One IMAP flag as design.md has homemail-sieve print it: a system flag
# (one backslash) or a keyword atom (RFC 3501 flag / atom).
_FLAG = re.compile(r'\\?[^\x00-\x20\x7f(){%*"\\\]]+')
# A sanitizer's report (ASan, UBSan, LSan) on stderr.
_SANITIZER = re.compile(r"(?m)^(==\d+==ERROR: |SUMMARY: \w*Sanitizer|.*: runtime error: )")
_ERRLINE = re.compile(r"(?m)^[^\n:]+:\d+:\d+: error: ")


def _unq(s, c_escapes=False):
    """Undo the engine's quoting: \\" and \\\\ always; \\n \\r \\t only when
    c_escapes (reasons, subjects).  Any other backslash is kept literally, so
    an unescaped flag such as \\Seen or \\Recent reads the same either way."""
    tbl = {"\\": "\\", '"': '"'}
    if c_escapes:
        tbl.update({"n": "\n", "r": "\r", "t": "\t"})
    return re.sub(r"\\(.)", lambda m: tbl.get(m.group(1), "\\" + m.group(1)), s)


def parse_hm(out):
    """homemail-sieve test stdout -> canonical lines (same rules as the
    reference, so INBOX case, flag order and discard position never count)."""
    items = []
    for line in out.split("\n"):
        if not line.strip():
            continue
        m = re.fullmatch(r"store " + _Q + r'(?: flags="([^"]*)")?', line)
        if m and all(_FLAG.fullmatch(f) for f in (m.group(2) or "").split(" ")
                     if m.group(2) is not None):
            items.append({"kind": "store", "folder": _unq(m.group(1)),
                          "flags": (m.group(2) or "").split()})
            continue
        m = re.fullmatch(r"redirect " + _Q, line)
        if m:
            items.append({"kind": "redirect", "addr": _unq(m.group(1))})
            continue
        m = re.fullmatch(r"reject " + _Q, line)
        if m:
            items.append({"kind": "reject", "reason": _unq(m.group(1), True)})
            continue
        m = re.fullmatch(r"vacation to=" + _Q + r" subject=" + _Q + r" seconds=(\d+)", line)
        if m:
            items.append({"kind": "vacation", "to": _unq(m.group(1)),
                          "subject": _unq(m.group(2), True), "seconds": int(m.group(3))})
            continue
        if line == "discard":
            continue
        items.append({"kind": "bad", "line": line})
    bad = [it["line"] for it in items if it["kind"] == "bad"]
    if bad:
        return ["UNPARSEABLE: " + b for b in bad]
    return outcome_lines(items)


class HmResult:
    def __init__(self, rc, lines, raw, out="", err=""):
        self.rc = rc
        self.lines = lines
        self.raw = raw
        self.out = out          # stdout, stderr as text
        self.err = err

    def sanitizer_report(self):
        return bool(_SANITIZER.search(self.err))

    def refusal_problem(self):
        """None when this run is a clean refusal (N9), else what is wrong."""
        if self.rc < 0:
            return f"killed by signal {-self.rc}"
        if self.sanitizer_report():
            return "sanitizer report on stderr"
        if self.rc != 1:
            return f"exit code {self.rc}, not 1"
        if self.out.strip():
            return "output on stdout"
        if not _ERRLINE.search(self.err):
            return "no 'FILE:LINE:COL: error:' line on stderr"
        return None


def run_hm(d, case, binary=HM_SIEVE):
    """Run homemail-sieve test on a prepared case dir; returns HmResult."""
    try:
        rc, out, err = _run(hm_cmd(d, case, binary), timeout=20,
                            env=dict(os.environ, TZ="UTC"))
    except subprocess.TimeoutExpired:
        return HmResult(-1, None, "$ homemail-sieve test: TIMEOUT after 20 s")
    except OSError as e:
        return HmResult(-1, None, f"$ homemail-sieve test: cannot run {binary}: {e}")
    raw = f"$ homemail-sieve test (rc={rc})\n{out}{err}"
    return HmResult(rc, parse_hm(out) if rc == 0 else None, raw, out, err)


def compare(case, ref, hm):
    """None when the two agree, else a message describing the difference."""
    if case.fails:
        if ref.ok:
            return ("case marked 'fails: both' but sieve-test accepted it "
                    "(the case is wrong):\n" + ref.raw)
        if hm.rc == 0:
            return "sieve-test refuses this script, homemail-sieve accepted it:\n" + hm.raw + "\n" + ref.raw
        why = hm.refusal_problem()
        if why:
            return f"homemail-sieve did not refuse cleanly ({why}):\n" + hm.raw
        return None
    if not ref.ok:
        return ("sieve-test refuses this script but the case is not marked "
                "'fails: both' (the case is wrong):\n" + ref.raw)
    if hm.rc != 0 or hm.lines is None or hm.sanitizer_report():
        return "homemail-sieve failed:\n" + hm.raw + "\n--- reference:\n" + "\n".join(ref.lines)
    if case.deviation is not None:                                      # N10
        if _lines_equal(ref.lines, hm.lines):
            return (f"deviation {case.deviation}: sieve-test now agrees with homemail-sieve "
                    "(drop the README row or fix the case):\n" + "\n".join(ref.lines))
        if hm.lines != case.expect:
            return (f"deviation {case.deviation}: homemail-sieve's outcome is not the "
                    "listed one\n--- expected (--- homemail):\n" + "\n".join(case.expect) +
                    "\n--- homemail-sieve (normalised):\n" + "\n".join(hm.lines) +
                    "\n--- sieve-test (normalised):\n" + "\n".join(ref.lines))
        return None
    if _lines_equal(ref.lines, hm.lines):
        return None
    return ("outcomes differ\n--- sieve-test (normalised):\n" + "\n".join(ref.lines) +
            "\n--- homemail-sieve (normalised):\n" + "\n".join(hm.lines) +
            "\n--- raw:\n" + hm.raw + "\n" + ref.raw)


def _lines_equal(ref, hm):
    if len(ref) != len(hm):
        return False
    for a, b in zip(ref, hm):
        if a == b:
            continue
        # N7: a truncated reference reason is a prefix.
        ma = re.fullmatch(r'reject "(.*)\.\.\."', a)
        mb = re.fullmatch(r'reject "(.*)"', b)
        if ma and mb and len(ma.group(1)) >= 100 and mb.group(1).startswith(ma.group(1)):
            continue
        return False
    return True


def run_all_reference(ws, cases, workers=4, hm_binary=None):
    """Prepare and run every case through sieve-test (and, with hm_binary,
    through homemail-sieve right after), in parallel.
    Returns {case.id: (dir, RefResult)}, or (dir, RefResult, HmResult)."""
    dirs = {c.id: ws.case_dir(c) for c in cases}
    res = {}

    def job(c):
        try:
            ref = run_reference(ws, dirs[c.id], c)
        except Exception as e:   # a parse problem is the case's failure
            ref = RefResult(None, None, f"reference error: {e}", -1)
        if hm_binary is None:
            return dirs[c.id], ref
        return dirs[c.id], ref, run_hm(dirs[c.id], c, hm_binary)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        futs = {ex.submit(job, c): c for c in cases}
        for f in concurrent.futures.as_completed(futs):
            res[futs[f].id] = f.result()
    return res


def main(argv=None):
    """Command line: list/run cases.  `sievediff.py [--ref-only] [PATTERN]`."""
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref-only", action="store_true",
                    help="only run sieve-test and print its normalised outcome")
    ap.add_argument("-v", action="store_true", help="print raw outputs")
    ap.add_argument("--cases", default=CASE_DIR,
                    help="directory of *.cases files (messages stay in tests/sieve-diff/messages)")
    ap.add_argument("--refused-ok", action="store_true",
                    help="treat a script sieve-test refuses as 'fails: both' (generated cases)")
    ap.add_argument("pattern", nargs="?", default="")
    a = ap.parse_args(argv)
    cases = [c for c in load_cases(a.cases) if a.pattern in c.id]
    ws = Workspace()
    try:
        refs = run_all_reference(ws, cases)
        agree = differ = bad = 0
        for c in cases:
            d, ref = refs[c.id]
            if a.ref_only:
                status = ("REFUSED" if ref.ok is False else "ERROR" if ref.ok is None else "ok")
                if (ref.ok is False) != c.fails or ref.ok is None:
                    status = "BADCASE"
                    bad += 1
                print(f"{c.id}: {status}: " + (" | ".join(ref.lines) if ref.lines else ""))
                if a.v or status == "BADCASE":
                    print(ref.raw)
                continue
            if ref.ok is None:
                bad += 1
                print(f"BADCASE {c.id}\n{ref.raw}")
                continue
            if a.refused_ok and ref.ok is False:
                c.fails = True
            hm = run_hm(d, c)
            msg = compare(c, ref, hm)
            if msg is None:
                agree += 1
                if a.v:
                    print(f"agree {c.id}")
            else:
                differ += 1
                print(f"DIFFER {c.id} ({c.src})\n{msg if a.v else msg.split(chr(10) + '--- raw:')[0]}\n")
        print(f"{len(cases)} cases: {agree} agree, {differ} differ, {bad} bad")
    finally:
        ws.close()


if __name__ == "__main__":
    main()
