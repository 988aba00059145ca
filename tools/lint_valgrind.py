#!/usr/bin/python3
"""lint_valgrind.py — the valgrind stage of tools/lint: memcheck over every CLI.

    tools/lint_valgrind.py BUILD_DIR LOG_DIR [--jobs N] [--only deliver,sieve,scan,user]

Runs each command-line program of BUILD_DIR (a plain, non-sanitized build:
valgrind cannot run ASan binaries) under
    valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
             --errors-for-leak-kinds=definite,indirect,possible
on the test corpora, N runs at a time:

  homemail-scan     every file of tests/scan-corpus (clean + hostile) and of
                    tests/fuzz/corpus/scan, with the shipped scan.conf, and
                    every scan_conf seed as the configuration;
  homemail-sieve    `check` on every script of the Sieve differential suite
                    (tests/sieve-diff), of tests/sieve-errors (each must be
                    refused) and of the sieve_parse seeds; `test` on every
                    differential case (script + message + envelope);
  homemail-deliver  as nobody into a scratch Maildir per run: every message of
                    tests/scan-corpus, tests/sieve-diff/messages and the msgin
                    and header seeds without Sieve (plain, to a folder with
                    flags, under a quota), and one case per differential
                    group whose script acts on the delivery (fileinto,
                    redirect, vacation, reject, flags, include, duplicate)
                    with Sieve; redirect/vacation go to a scratch sendmail;
  homemail-user     add (every hash scheme) / passwd / list / show / lock /
                    unlock / del on a scratch users file, and list/show on
                    the users seeds.

A run is a finding when memcheck reports anything (its log is kept in LOG_DIR
and its head printed) or when the program did not do what the input asks
(wrong exit code, no message stored): a stage that silently ran nothing
would prove nothing.  File-list runs (check, scan) take many files per
process; when one fails, each of its files is run alone to name the input.

Output: one line per finding, then "valgrind: ..." (the summary).
Exit: the number of findings (at most 100); 101 when the stage itself broke.
Relies on: python3, valgrind, setpriv (util-linux), the sievediff case parser
in tests/integration/sievediff.py.
"""
import argparse
import concurrent.futures
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import sievediff  # noqa: E402  (the differential suite's own case parser)

VALGRIND = ["valgrind", "--tool=memcheck", "--error-exitcode=99",
            "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
            "--errors-for-leak-kinds=definite,indirect,possible",
            "--child-silent-after-fork=yes", "--num-callers=30", "-q",
            "--suppressions=" + os.path.join(TOP, "tools", "lint.valgrind.supp")]
VG_RC = 99
NOBODY_LOGS = None     # scratch dir for the logs of runs as nobody (set by main)
TIMEOUT = 300          # one run; a hang is a finding, not a stuck lint
BATCH = 24             # files per `check` / scan process
NOBODY = pwd.getpwnam("nobody")     # runs with as_nobody, and their scratch dirs


class Run:
    """One program run: what to run, on what, and what a good run looks like."""

    def __init__(self, cli, label, argv, stdin=None, ok_rc=(0,), as_nobody=False,
                 env=None, check=None, files=None):
        self.cli = cli            # homemail-deliver | -sieve | -scan | -user
        self.label = label        # the input, as a person names it
        self.argv = argv
        self.stdin = stdin        # path, bytes (the input itself) or None
        self.ok_rc = ok_rc        # exit codes that mean "did what was asked"
        self.as_nobody = as_nobody
        self.uid, self.gid = NOBODY.pw_uid, NOBODY.pw_gid
        self.env = env
        self.check = check        # f(run, stdout, stderr) -> None | "what is wrong"
        self.files = files        # inputs of a batch run (split on failure)
        self.log = None


def msg_files(*dirs):
    """Regular files of dirs (sorted), skipping the corpus' own notes."""
    out = []
    for d in dirs:
        p = os.path.join(TOP, d)
        for n in sorted(os.listdir(p)):
            f = os.path.join(p, n)
            if os.path.isfile(f) and not n.startswith(".") and n not in ("MANIFEST", "README"):
                out.append(f)
    return out


def rel(p):
    return os.path.relpath(p, TOP) if p.startswith(TOP) else p


def chunks(seq, n):
    return [seq[i:i + n] for i in range(0, len(seq), n)]


def files_in(d):
    """Number of message files under a Maildir (all folders, new + cur)."""
    n = 0
    for root, _dirs, names in os.walk(d):
        if os.path.basename(root) in ("new", "cur"):
            n += len(names)
    return n


class Plan:
    """Builds the runs over a scratch tree (readable by nobody)."""

    def __init__(self, build, work):
        self.b = build
        self.work = work
        self.runs = []
        self.uid, self.gid = NOBODY.pw_uid, NOBODY.pw_gid
        self.n = 0

    def mkdir(self, *parts, nobody=False):
        d = os.path.join(self.work, *parts)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        if nobody:
            os.chown(d, self.uid, self.gid)
        return d

    def write(self, path, data, mode=0o644):
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    # ---- homemail-scan ---------------------------------------------------
    def scan(self):
        exe = os.path.join(self.b, "homemail-scan")
        conf = os.path.join(TOP, "exim-local-scan", "scan.conf")
        msgs = msg_files("tests/scan-corpus/clean", "tests/scan-corpus/hostile",
                         "tests/fuzz/corpus/scan")
        # 0 accepted, 1 rejected, 2 tempreject, 3 frozen: all are verdicts
        for part in chunks(msgs, BATCH):
            self.runs.append(Run("homemail-scan", "", [exe, "-c", conf, "-l"], ok_rc=(0, 1, 2, 3),
                                 files=part, check=self.scan_check))
        self.runs.append(Run("homemail-scan", "-u (SMTPUTF8)", [exe, "-u", "-c", conf], ok_rc=(0, 1, 2, 3),
                             files=msgs[:BATCH], check=self.scan_check))
        # every configuration seed (good or broken: 78 = refused config)
        for c in msg_files("tests/fuzz/corpus/scan_conf"):
            self.runs.append(Run("homemail-scan", f"-c {rel(c)}", [exe, "-c", c, msgs[0]],
                                 ok_rc=(0, 1, 2, 3, 78)))

    @staticmethod
    def scan_check(run, out, err):
        # one verdict line per file
        n = sum(1 for line in out.splitlines()
                if re.search(r"(^|: )(accept|reject|tempreject|freeze)\b", line))
        want = len(run.files)
        return None if n >= want else f"{n} verdicts for {want} files"

    # ---- homemail-sieve --------------------------------------------------
    def sieve_cases(self):
        """One scratch dir per differential group (its script and files, and
        each case's message as mNNN.eml): self.groups, self.case_dirs.  The
        deliver runs with Sieve use them too."""
        self.groups = {}
        for c in sievediff.load_cases():
            self.groups.setdefault(c.id.rsplit("/", 1)[0], []).append(c)
        self.case_dirs = {}
        for gid, cs in self.groups.items():
            d = self.mkdir("sieve", f"g{len(self.case_dirs):04d}")
            self.write(os.path.join(d, "script.sieve"), cs[0].script)
            for name, text in cs[0].files.items():
                self.write(os.path.join(d, name), text)
            for i, c in enumerate(cs):
                self.write(os.path.join(d, f"m{i:03d}.eml"), c.message)
            self.case_dirs[gid] = d

    def sieve(self):
        """The homemail-sieve runs (after sieve_cases)."""
        exe = os.path.join(self.b, "homemail-sieve")
        good, bad = [], []
        for gid, cs in self.groups.items():
            d = self.case_dirs[gid]
            if cs[0].fails:
                bad.append(os.path.join(d, "script.sieve"))
            elif not re.search(r"\binclude\b", cs[0].script):
                # include needs --global-dir, which only `test` has
                good.append(os.path.join(d, "script.sieve"))
            for i, c in enumerate(cs):
                argv = sievediff.hm_cmd(d, c, exe, message=os.path.join(d, f"m{i:03d}.eml"))
                self.runs.append(Run("homemail-sieve", f"test {c.id} ({c.src})", argv,
                                     ok_rc=(1,) if c.fails else (0,),
                                     env=dict(os.environ, TZ="UTC")))
        for part in chunks(good, BATCH):
            self.runs.append(Run("homemail-sieve", "check (differential scripts)", [exe, "check"],
                                 ok_rc=(0,), files=part))
        errs = msg_files("tests/sieve-errors")
        errs = [f for f in errs if f.endswith(".sieve")] + bad
        for part in chunks(errs, BATCH):
            # each file must be refused: one "FILE:L:C: error:" line per file
            self.runs.append(Run("homemail-sieve", "check (broken scripts)", [exe, "check"],
                                 ok_rc=(1,), files=part, check=self.refused_check))
        seeds = msg_files("tests/fuzz/corpus/sieve_parse")
        for part in chunks(seeds, BATCH):
            self.runs.append(Run("homemail-sieve", "check (sieve_parse seeds)", [exe, "check"],
                                 ok_rc=(0, 1), files=part))

    @staticmethod
    def refused_check(run, out, err):
        missing = [rel(f) for f in run.files if (f + ":") not in err]
        return None if not missing else "not refused: " + " ".join(missing[:5])

    # ---- homemail-deliver ------------------------------------------------
    def deliver(self):
        base = self.mkdir("deliver", nobody=True)
        # nobody runs a copy in the scratch tree: the checkout itself may sit
        # below a directory nobody cannot enter (CI's clone, /root)
        exe = os.path.join(self.mkdir("bin"), "homemail-deliver")
        shutil.copy2(os.path.join(self.b, "homemail-deliver"), exe)
        os.chmod(exe, 0o755)
        # a scratch sendmail: redirect and vacation land in out/, never in Exim
        out = self.mkdir("deliver", "out", nobody=True)
        sm = self.write(os.path.join(base, "sendmail"),
                        f'#!/bin/sh\ncat > "$(mktemp {out}/sent.XXXXXX)"\n', 0o755)
        confs = {
            "plain": "",
            "quota": "quota_rule = *:storage=200K:messages=50\n",
            "small-header": "max_header_size = 4096\nloop_max = 1\n",
        }
        for k, v in confs.items():
            confs[k] = self.write(os.path.join(base, f"{k}.conf"), v)
        env = {"PATH": "/usr/bin:/bin", "HOMEMAIL_SENDMAIL": f"/bin/sh {sm}", "TZ": "UTC"}
        msgs = msg_files("tests/scan-corpus/clean", "tests/scan-corpus/hostile",
                         "tests/sieve-diff/messages", "tests/fuzz/corpus/msgin",
                         "tests/fuzz/corpus/header")
        kinds = [("plain", []), ("quota", ["-m", "Lists.Débian", "--flags", "\\Seen $Label1"]),
                 ("small-header", ["-e", "-a", "orig@home.com.bo"])]
        for i, m in enumerate(msgs):
            kind, extra = kinds[i % len(kinds)]
            self.n += 1
            home = self.mkdir("deliver", f"d{self.n:04d}", nobody=True)
            md = os.path.join(home, "Maildir")
            argv = [exe, "--config", confs[kind], "--maildir", md, "--no-sieve",
                    "-f", "sender@example.org", "-r", "user@home.com.bo"] + extra
            # 0 stored; 77 only for the loop/size rules of small-header
            self.runs.append(Run("homemail-deliver", f"{rel(m)} ({kind})", argv, stdin=m,
                                 ok_rc=(0, 77) if kind == "small-header" else (0,),
                                 as_nobody=True, env=dict(env, HOME=home),
                                 check=self.stored_check(md)))
        # the Sieve engine itself is covered by `homemail-sieve test` above;
        # here the LDA's side of each action: the first groups using it
        acts = ["fileinto", "redirect", "vacation", "reject", "ereject", "addflag", "setflag",
                "include", "duplicate", ":create", ":copy", "discard", "keep", "stop"]
        per_act = 3
        taken = {k: 0 for k in acts}
        for gid, cs in self.groups.items():
            c = cs[0]
            if c.fails:
                continue
            hit = [k for k in acts if taken[k] < per_act and
                   re.search(r"(?<![\w:])" + re.escape(k) + r"\b", c.script)]
            if not hit:
                continue
            for k in hit:
                taken[k] += 1
            d = self.case_dirs[gid]
            self.n += 1
            home = self.mkdir("deliver", f"d{self.n:04d}", nobody=True)
            md = os.path.join(home, "Maildir")
            conf = self.write(os.path.join(home, "deliver.conf"), f"sieve_dir = {d}\n")
            msg = self.write(os.path.join(home, "msg.eml"), c.message)
            argv = [exe, "--config", conf, "--maildir", md,
                    "--sieve", os.path.join(d, "script.sieve"),
                    "-f", c.env["from"], "-r", c.env["to"], "-a", c.env["orig"]]
            # 77 = the script rejected the message
            self.runs.append(Run("homemail-deliver", f"sieve {c.id} ({c.src})", argv, stdin=msg,
                                 ok_rc=(0, 77), as_nobody=True, env=dict(env, HOME=home)))

    @staticmethod
    def stored_check(md):
        def check(run, out, err):
            n = files_in(md)
            return None if n == 1 else f"{n} files stored, want 1"
        return check

    # ---- homemail-user ---------------------------------------------------
    def user(self):
        exe = os.path.join(self.b, "homemail-user")
        d = self.mkdir("user")
        users = os.path.join(d, "users")
        lock = os.path.join(d, "lockout.db")
        u = [exe, "--users", users, "--lockout", lock]
        # one sequence: each command depends on the file the previous left
        seq = []
        for s in ("sha512-crypt", "sha256-crypt", "bcrypt", "yescrypt"):
            seq.append((["add", f"u-{s}@home.com.bo", "--uid", "5000", "--gid", "5000",
                         "--home", os.path.join(d, f"h-{s}"), "--quota", "10M",
                         "--scheme", s, "--password-stdin"], b"Secret-pw-1\n", (0,)))
        seq += [
            (["add", "u-bcrypt@home.com.bo", "--uid", "5000", "--gid", "5000",
              "--password-stdin"], b"x\n", (65, 73)),            # exists already
            (["add", "not an address", "--uid", "1", "--gid", "1", "--password-stdin"], b"x\n",
             (64, 65)),
            (["passwd", "u-yescrypt@home.com.bo", "--scheme", "sha512-crypt", "--password-stdin"],
             b"Other-pw-2\n", (0,)),
            (["list"], None, (0,)),
            (["list", "--hashes"], None, (0,)),
            (["show", "u-bcrypt@home.com.bo", "--hash"], None, (0,)),
            (["show", "nobody@home.com.bo"], None, (67,)),
            (["lock", "u-sha256-crypt@home.com.bo"], None, (0,)),
            (["show", "u-sha256-crypt@home.com.bo"], None, (0,)),
            (["unlock", "u-sha256-crypt@home.com.bo"], None, (0,)),
            (["unlock", "--ip", "192.0.2.7"], None, (0,)),
            (["del", "u-sha256-crypt@home.com.bo", "--remove-home"], None, (0,)),
            (["del", "u-sha256-crypt@home.com.bo"], None, (67,)),
            (["list"], None, (0,)),
        ]
        self.user_seq = [Run("homemail-user", " ".join(a), u + a, stdin=inp, ok_rc=rc)
                         for a, inp, rc in seq]
        for f in msg_files("tests/fuzz/corpus/users"):
            uu = [exe, "--users", f, "--lockout", lock]
            self.runs.append(Run("homemail-user", f"list ({rel(f)})", uu + ["list", "--hashes"],
                                 ok_rc=(0, 65, 74)))
            self.runs.append(Run("homemail-user", f"show ({rel(f)})", uu + ["show", "u@home.com.bo"],
                                 ok_rc=(0, 65, 67, 74)))


def execute(run, logdir, seq):
    """Run one program under memcheck; returns (run, problems list, memcheck log text)."""
    run.log = os.path.join(logdir, f"{run.cli}.{seq:04d}.log")
    vglog = run.log
    if run.as_nobody:
        # valgrind opens its log as the user it runs as, and logdir may sit
        # below a directory nobody cannot enter: log into the scratch tree
        vglog = os.path.join(NOBODY_LOGS, os.path.basename(run.log))
        with open(vglog, "w"):
            pass
        os.chown(vglog, run.uid, run.gid)
    argv = list(run.argv) + list(run.files or [])
    cmd = VALGRIND + [f"--log-file={vglog}"] + argv
    if run.as_nobody:
        cmd = ["setpriv", f"--reuid={run.uid}", f"--regid={run.gid}", "--clear-groups", "--"] + cmd
    kw = {"stdin": subprocess.DEVNULL}
    fh = None
    if isinstance(run.stdin, bytes):
        kw = {"input": run.stdin}
    elif run.stdin:
        fh = open(run.stdin, "rb")
        kw = {"stdin": fh}
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, env=run.env or os.environ, **kw)
        rc, out, err = p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return run, [f"timed out after {TIMEOUT} s"], ""
    finally:
        if fh:
            fh.close()
        if vglog != run.log and os.path.exists(vglog):
            shutil.move(vglog, run.log)
    problems = []
    log = open(run.log, encoding="utf-8", errors="replace").read() if os.path.exists(run.log) else ""
    if rc == VG_RC or log.strip():
        kinds = sorted(set(re.findall(r"==\d+== ((?:Invalid|Conditional|Syscall param|Mismatched|"
                                      r"Source and destination|Argument|Use of uninit)[^\n]*|"
                                      r"[\d,]+ bytes in [\d,]+ blocks are \w+ lost)", log)))
        problems.append("memcheck: " + ("; ".join(k for k in kinds[:4]) or "see log"))
    elif rc < 0:
        problems.append(f"killed by signal {-rc}")
    elif rc not in run.ok_rc:
        problems.append(f"exit {rc}, expected {'/'.join(map(str, run.ok_rc))}: "
                        + (err.strip().splitlines() or [""])[-1][:200])
    elif run.check:
        why = run.check(run, out, err)
        if why:
            problems.append(why)
    return run, problems, log


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("logdir")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--only", default="deliver,sieve,scan,user")
    ap.add_argument("--keep", action="store_true", help="keep the scratch tree (its path is printed)")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    build = os.path.abspath(a.build)
    shutil.rmtree(a.logdir, ignore_errors=True)
    os.makedirs(a.logdir)
    if shutil.which("valgrind") is None:
        print("valgrind: not installed (tools/install-deps check)")
        return 101
    want = set(a.only.split(","))
    for cli in ("homemail-deliver", "homemail-sieve", "homemail-scan", "homemail-user"):
        if cli.split("-")[1] in want and not os.access(os.path.join(build, cli), os.X_OK):
            print(f"valgrind: {build}/{cli} is not built")
            return 101
    work = tempfile.mkdtemp(prefix="hm-lint-vg.")
    os.chmod(work, 0o755)
    global NOBODY_LOGS
    NOBODY_LOGS = os.path.join(work, "vglogs")
    os.mkdir(NOBODY_LOGS)
    os.chmod(NOBODY_LOGS, 0o755)
    # valgrind reads its suppressions as the user it runs as: the runs as
    # nobody get a copy in the scratch tree (the checkout may be 0700)
    supp = os.path.join(work, "lint.valgrind.supp")
    shutil.copyfile(os.path.join(TOP, "tools", "lint.valgrind.supp"), supp)
    os.chmod(supp, 0o644)
    VALGRIND[:] = [a if not a.startswith("--suppressions=") else "--suppressions=" + supp
                   for a in VALGRIND]
    try:
        plan = Plan(build, work)
        # the deliver runs with Sieve use the differential case dirs
        if "sieve" in want or "deliver" in want:
            plan.sieve_cases()
        if "sieve" in want:
            plan.sieve()
        if "deliver" in want:
            plan.deliver()
        if "scan" in want:
            plan.scan()
        seq_runs = []
        if "user" in want:
            plan.user()
            seq_runs = plan.user_seq
        findings = []
        counts = {}
        seqno = [0]

        def report(run, problems, log):
            counts[run.cli] = counts.get(run.cli, 0) + 1
            for why in problems:
                what = run.label or " ".join(rel(x) for x in run.files or [])
                findings.append(f"{run.cli}: {what}: {why} (log {rel(run.log)})")
                print(f"valgrind: {findings[-1]}")
                for line in log.splitlines()[:40]:
                    print("    " + line)
                sys.stdout.flush()

        def nxt():
            seqno[0] += 1
            return seqno[0]

        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            # the users-file sequence runs in order, beside the parallel runs
            def user_sequence():
                return [execute(r, a.logdir, nxt()) for r in seq_runs]
            useq = ex.submit(user_sequence)
            futs = [ex.submit(execute, r, a.logdir, nxt()) for r in plan.runs]
            for f in concurrent.futures.as_completed(futs):
                run, problems, log = f.result()
                if problems and run.files and len(run.files) > 1:
                    # name the input: each file of the batch alone
                    singles = [Run(run.cli, (run.label + " " if run.label else "") + rel(x), run.argv,
                                   ok_rc=run.ok_rc, check=run.check, files=[x], env=run.env)
                               for x in run.files]
                    subs = [execute(r, a.logdir, nxt()) for r in singles]
                    if any(p for _, p, _ in subs):
                        for sub in subs:
                            if sub[1]:
                                report(*sub)
                        counts[run.cli] = counts.get(run.cli, 0) + 1
                        continue
                    # no file fails alone: the batch's own report stands
                report(run, problems, log)
            for r in useq.result():
                report(*r)
        total = sum(counts.values())
        per = ", ".join(f"{k.split('-')[1]} {v}" for k, v in sorted(counts.items()))
        print(f"valgrind: {len(findings)} finding(s) in {total} memcheck run(s) ({per}), "
              f"{time.monotonic() - t0:.0f} s")
        return min(len(findings), 100)
    finally:
        if a.keep:
            print(f"valgrind: scratch tree kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # the stage broke: never count that as clean
        import traceback
        traceback.print_exc()
        print(f"valgrind: the stage failed: {e}")
        sys.exit(101)
