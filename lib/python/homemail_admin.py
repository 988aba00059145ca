"""homemail_admin — the pieces homemail's Python admin tools share.

What for: homemail-status, homemail-report and homemail-backup (also run as
  homemail-restore) each needed the same things: a `key = value`
  configuration reader with line-numbered errors, the usage/config error
  classes and exit codes (sysexits.h: 64 usage, 75 temporary, 78 config),
  --help/--version as the sole argument, a small option parser, a command
  runner that never raises for a missing program, log-file readers (tail of
  a plain file, or a whole rotated .gz), "first pattern that matches"
  tables, Dovecot's quota listing, an atomic file replace and the header of
  a mail to the postmaster.  One copy here, so a fix lands in all of them.
Where it lives: /usr/share/homemail/python/ (private: not on Python's
  path); the build puts a copy beside the tools in build/.  Each tool puts
  the directory of its own real path first, then that one, on sys.path,
  and sets sys.dont_write_bytecode so no __pycache__ is ever left behind
  in a packaged directory.
Relies on: Python 3's standard library only (the tools must run on a host
  whose other Python modules are half broken).
How it fails: ConfigError and UsageError carry the message the tool prints
  after its name; every other helper reports failure by its return value
  (None, or an exit code) as its docstring says.
"""
import gzip
import os
import re
import subprocess
import sys
import tempfile

EX_USAGE = 64       # sysexits.h EX_USAGE: bad command line
EX_TEMPFAIL = 75    # EX_TEMPFAIL: try again later (mail not handed over)
EX_CONFIG = 78      # EX_CONFIG: unreadable or bad configuration file


class ConfigError(Exception):
    """A configuration that cannot be used; str() is the message."""


class UsageError(Exception):
    """A command line that cannot be used; str() is the message."""


# ---------------------------------------------------------------------------
# configuration
def read_config(path, defaults, must_exist, *, strict=True, inline_comments=True,
                missing="no such file"):
    """read_config - defaults overlaid with the `key = value` lines of path.

    Blank lines are skipped; '#' starts a comment anywhere on a line
    (inline_comments) or only as a line's first character.  strict: a line
    without '=' or with a key not in defaults is an error ("unknown
    setting"); otherwise a line without '=' is an error ("not 'key =
    value'") and unknown keys are passed over (another tool's settings in a
    shared file).  A missing file gives the defaults unless must_exist
    ("PATH: <missing>").  Returns: a new dict; raises ConfigError with
    "PATH:LINE: ..." or "PATH: <strerror>"."""
    cfg = dict(defaults)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(f"{path}: {missing}") from None
        return cfg
    except OSError as ex:
        raise ConfigError(f"{path}: {ex.strerror}") from None
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip() if inline_comments else line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if strict and (not sep or key not in defaults):
            raise ConfigError(f"{path}:{n}: unknown setting {key!r}")
        if not sep:
            raise ConfigError(f"{path}:{n}: not 'key = value'")
        if key in defaults:
            cfg[key] = value.strip()
    return cfg


def with_config(program, flag, conffile, *args):
    """argv for program with `flag conffile` when conffile is set (exim4 -C,
    doveadm/doveconf -c), then args."""
    return [program] + ([flag, conffile] if conffile else []) + list(args)


# ---------------------------------------------------------------------------
# command line
def command_line(argv, prog, version, usage, opts, values=(), lists=(), flags=None):
    """command_line - a tool's arguments, or what to exit with instead.

    --help/-h or --version as the sole argument prints to stdout (an
    option's value that reads "--help" is no request for help); otherwise
    argv is parsed into opts (parse_options), a usage error printed on
    stderr with the usage.  Returns: (None, opts) to go on, or (exit code,
    None): 0 after help or version, EX_USAGE."""
    if len(argv) == 1 and argv[0] in ("--help", "-h"):
        sys.stdout.write(usage)
        return 0, None
    if len(argv) == 1 and argv[0] == "--version":
        sys.stdout.write(f"{prog} {version}\n")
        return 0, None
    try:
        return None, parse_options(argv, opts, values, lists, flags)
    except UsageError as ex:
        return usage_error(prog, ex, usage), None


def parse_options(argv, opts, values=(), lists=(), flags=None):
    """opts updated from argv: each option in values takes the next argument
    (opts[NAME] for --NAME), each in lists appends it (opts[NAME] is a
    list), each in flags sets {option: (key, value)}.  Returns opts; raises
    UsageError ("--x needs a value", "unknown argument 'y'")."""
    flags = flags or {}
    it = iter(argv)
    for a in it:
        if a in values or a in lists:
            v = next(it, None)
            if v is None:
                raise UsageError(f"{a} needs a value")
            if a in lists:
                opts[a[2:]].append(v)
            else:
                opts[a[2:]] = v
        elif a in flags:
            key, value = flags[a]
            opts[key] = value
        else:
            raise UsageError(f"unknown argument {a!r}")
    return opts


def usage_error(prog, message, usage):
    """Print "PROG: message" and the usage on stderr; returns EX_USAGE."""
    sys.stderr.write(f"{prog}: {message}\n" + usage)
    return EX_USAGE


# ---------------------------------------------------------------------------
# programs and files
def run(argv, timeout=30, input=None):
    """(returncode, stdout, stderr) of a command, text with undecodable bytes
    replaced; stdin is /dev/null unless input is given.  127 ("not
    installed") when the program does not exist, 124 when it does not end
    within timeout seconds (it is killed); any other OSError is raised."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                           timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: not installed"
    except subprocess.TimeoutExpired:
        return 124, "", f"{argv[0]}: no answer in {timeout} s"


def read_tail(path, maxbytes=None):
    """Text of the last maxbytes bytes of a plain file (all of it with None),
    undecodable bytes replaced; None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            if maxbytes is not None:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - maxbytes))
            data = f.read()
    except OSError:
        return None
    return data.decode("utf-8", "replace")


def read_log(path):
    """Text of a whole log file, gunzipped when its name ends in .gz (a
    rotated one); None when it cannot be read."""
    if not path.endswith(".gz"):
        return read_tail(path)
    try:
        with gzip.open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def write_atomic(path, text, mode=0o644):
    """Replace path by text: a temporary file in the same directory, synced,
    given mode, then renamed over path (a reader sees the old or the new
    file, never half of one).  Raises OSError."""
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------------------
# log lines and Dovecot's answers
def patterns(table):
    """[(label, compiled regex)] from [(label, pattern)], case-insensitive:
    a table for first_match."""
    return [(label, re.compile(rx, re.I)) for label, rx in table]


def first_match(table, text, default=None):
    """The label of the first (label, regex) of table whose regex is found
    in text (a label may be None: "count it nowhere"); default when none."""
    return next((label for label, rx in table if rx.search(text)), default)


def quota_users(text, limit):
    """From `doveadm -f tab quota get -A` (a header line, then USER, QUOTA
    NAME, TYPE, VALUE, LIMIT, PERCENT): (set of users with a STORAGE row,
    ["USER PCT%" for those at or over limit percent]); an unlimited quota
    (LIMIT - or 0) is never over, a row that does not parse is passed over."""
    over, users = [], set()
    for line in text.splitlines()[1:]:
        f = line.split("\t")
        if len(f) >= 6 and f[2] == "STORAGE":
            users.add(f[0])
            try:
                if f[4] not in ("-", "0") and int(f[5]) >= limit:
                    over.append(f"{f[0]} {f[5]}%")
            except ValueError:
                pass
    return users, over


def mail_text(to, subject, body):
    """A plain-text, auto-generated (RFC 3834) message for `sendmail -t`."""
    return (f"To: {to}\nSubject: {subject}\n"
            "Auto-Submitted: auto-generated\nContent-Type: text/plain; charset=utf-8\n\n"
            + body)
