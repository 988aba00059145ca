"""hmtest — the integration-test harness: real exim4 and dovecot, run privately.

Every daemon a test starts is its own: own config, spool, base_dir and logs
under /var/tmp/hmtest/<run>/ (world-traversable, because Exim's pipe transport
and Dovecot's mail processes run as the test users), listening on 127.0.0.1
on free high ports.  Nothing here touches the system daemons or the standard
ports, and every process is stopped by its own pid.

What the daemons' users load or run (homemail's modules and programs) is
staged: copied out of the checkout into this process's /var/tmp/hmtest tree,
because a checkout may sit where those users cannot enter (a 0700
`mktemp -d`, anything under /root).  BUILD names the staged copies,
BUILD_TREE the checkout's build/ (for reports).

Two kinds of private Exim/Dovecot: Exim and Dovecot run the harness's own
small templates (for tests of a module or program); PackageExim and
PackageDovecot run the configuration the package installs (Debian's stock
exim4 conf.d with homemail's conf.d snippets laid over it, assembled by
update-exim4.conf; homemail's dovecot conf.d snippet), with only ports,
paths and sockets pointed at the private instance.  Probes of configuration
behaviour use the latter.

Every Exim is checked with one probe message right after it starts: a
daemon that cannot load its module or accept mail fails the test at once
with Exim's own log lines.

Verified facts this relies on are in docs/design.md ("Field notes"):
  * `exim4 -C FILE` keeps root only when FILE is listed in
    /etc/exim4/trusted_configs and FILE and its directory are root-owned and
    not writable by others: we keep a pool of such slots in /var/lib/hmtest-exim.
  * Dovecot loads auth modules only from /usr/lib/dovecot/modules/auth: to add
    ours we bind-mount a directory over it inside a private mount namespace.

Test users are real system accounts (Exim's check_local_user and Dovecot's
passwd userdb need them), created with random names and removed at exit.
"""
import atexit
import fcntl
import grp
import os
import pwd
import secrets
import shutil
import smtplib
import socket
import ssl
import string
import subprocess
import tempfile
import time
import warnings
import weakref

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # Debian's python3.11 still has it; SHA512-CRYPT for passwd-file

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_TREE = os.path.join(TOP, "build")
BASE = "/var/tmp/hmtest"
SLOTS = "/var/lib/hmtest-exim"
# Exim reads only the first 32 lines of trusted_configs (a fixed array in
# exim.c): a config listed further down is silently untrusted and deliveries
# fail with "exim user lost privilege for using -C option".  Stay below that,
# and give a slot back as soon as its Exim object is gone.
NSLOTS = 30
TRUSTED = "/etc/exim4/trusted_configs"
SANITIZE = os.environ.get("SANITIZE") == "1"
MAIL_DOMAIN = "home.com.bo"

_users = []
_cleanups = []
# What the harness writes is read by the daemons' users: whatever the
# caller's umask (077 is common for root), files and directories are
# created group/world-readable; modes that must be narrower are set explicitly.
os.umask(0o022)


def _mkdir(path, mode=0o755, owner=None):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, owner[0], owner[1])
    return path


def _workdir(tag):
    """A fresh world-traversable directory for one daemon or user set."""
    _mkdir(BASE, 0o755)
    d = tempfile.mkdtemp(prefix=f"{tag}-", dir=BASE)
    os.chmod(d, 0o755)
    if not os.environ.get("HM_KEEP"):
        _cleanups.append(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


# --------------------------------------------------------------------------
# Staging: homemail's build outputs where the daemons' users can read them.
def _stage_build():
    """Copy every program and module of build/ (top level: executables and
    *.so) into a fresh directory under BASE; return its path.  The copies
    are 0755 (programs) or 0644 (modules) whatever the checkout's modes."""
    d = _workdir("build")
    if os.path.isdir(BUILD_TREE):
        for n in sorted(os.listdir(BUILD_TREE)):
            src = os.path.join(BUILD_TREE, n)
            if not os.path.isfile(src) or n.startswith("."):
                continue
            if n.endswith(".so"):
                mode = 0o644
            elif os.access(src, os.X_OK) and not n.endswith(".a"):
                mode = 0o755
            else:
                continue
            shutil.copyfile(src, os.path.join(d, n))
            os.chmod(os.path.join(d, n), mode)
    return d


def check_staging():
    """None when an unprivileged user can read and run the staged build
    outputs, else one line saying why not and what to do (called once at the
    start of a run, so a run that cannot work stops in its first second)."""
    probe = next((os.path.join(BUILD, n) for n in sorted(os.listdir(BUILD))
                  if n.endswith(".so")), None)
    if probe is None:
        return f"no modules built in {BUILD_TREE}: run make first"
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        "--", "test", "-r", probe], capture_output=True)
    if r.returncode != 0:
        return (f"user nobody cannot read {probe}: the private daemons could not load "
                f"homemail's modules; make {BASE} and its parents readable and "
                f"traversable by all (chmod o+rx)")
    return None


BUILD = _stage_build()


@atexit.register
def _cleanup():
    for fn in reversed(_cleanups):
        try:
            fn()
        except Exception:
            pass
    for u in _users:
        subprocess.run(["userdel", "-f", u.name], capture_output=True)
        shutil.rmtree(u.home, ignore_errors=True)


_given_ports = set()


def free_port():
    """A TCP port that is free on 127.0.0.1 right now and was not handed out
    before in this process (the kernel may return the same ephemeral port
    twice in a row, which gave one dovecot two identical listeners)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port


def wait_for(pred, timeout=30.0, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value; return it or raise TimeoutError."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_port(port, host="127.0.0.1", timeout=20.0):
    def up():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    wait_for(up, timeout, what=f"port {host}:{port}")


# --------------------------------------------------------------------------
# SANITIZE=1: homemail's modules carry ASan/UBSan, the stock daemons do not.
def sanitizer_env(logdir=None):
    """Environment for a stock daemon (exim4, dovecot, doveadm) that loads a
    SANITIZE=1 module: the ASan/UBSan runtimes preloaded ahead of everything,
    reports written to logdir (world-writable: pipe transports and mail
    processes run as the test users).  {} when SANITIZE is off.  Leak
    detection stays off inside the daemons: they exit without freeing."""
    if not SANITIZE:
        return {}
    libs = [subprocess.run(["cc", "-print-file-name=" + n], capture_output=True,
                           text=True).stdout.strip() for n in ("libasan.so", "libubsan.so")]
    logdir = logdir or _workdir("sanitizer")
    os.makedirs(logdir, exist_ok=True)
    os.chmod(logdir, 0o1777)
    return {"LD_PRELOAD": ":".join(libs),
            "ASAN_OPTIONS": ("detect_leaks=0:verify_asan_link_order=0:abort_on_error=1:"
                             f"log_path={logdir}/asan"),
            "UBSAN_OPTIONS": f"print_stacktrace=1:halt_on_error=1:log_path={logdir}/ubsan"}


def sanitizer_dovecot_conf():
    """Dovecot settings that pass sanitizer_env() on to its auth and mail
    processes (and lift the address-space limit ASan's shadow memory needs)."""
    if not SANITIZE:
        return ""
    return ("import_environment = TZ CORE_OUTOFMEM CORE_ERROR LISTEN_PID LISTEN_FDS "
            "LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS\ndefault_vsz_limit = 0\n")


def sanitizer_reports(env):
    """Report files written so far under the log_path of a sanitizer_env()."""
    if not env:
        return []
    d = os.path.dirname(env["ASAN_OPTIONS"].rsplit("log_path=", 1)[1])
    return sorted(os.path.join(d, n) for n in os.listdir(d)) if os.path.isdir(d) else []


# --------------------------------------------------------------------------
# TLS test certificate (CN and SAN mail.home.com.bo), one per test process.
_cert = None


def test_cert():
    """(cert_path, key_path) of a self-signed certificate for mail.home.com.bo."""
    global _cert
    if _cert is None:
        d = _workdir("cert")
        crt, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "rsa:2048",
                        "-days", "2", "-subj", "/CN=mail.home.com.bo",
                        "-addext", "subjectAltName=DNS:mail.home.com.bo,DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", crt],
                       check=True, capture_output=True)
        os.chmod(crt, 0o644)
        os.chmod(key, 0o644)   # test only: Debian-exim must read it
        _cert = (crt, key)
    return _cert


def client_tls_context():
    """An SSL context that trusts exactly the test certificate."""
    ctx = ssl.create_default_context(cafile=test_cert()[0])
    ctx.check_hostname = False
    return ctx


# --------------------------------------------------------------------------
class TestUser:
    def __init__(self, name, password, home):
        pw = pwd.getpwnam(name)
        self.name = name
        self.password = password
        self.home = home
        self.uid = pw.pw_uid
        self.gid = pw.pw_gid
        self.maildir = os.path.join(home, "Maildir")
        self.address = f"{name}@{MAIL_DOMAIN}"

    def __repr__(self):
        return f"TestUser({self.name})"


def make_user(password=None, prefix="hm"):
    """Create a real system account in group users with home under /var/tmp/hmtest/home."""
    _mkdir(BASE, 0o755)
    homes = _mkdir(os.path.join(BASE, "home"), 0o755)
    name = prefix + "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))
    password = password or ("Pw-" + secrets.token_hex(6))
    home = os.path.join(homes, name)
    subprocess.run(["useradd", "-m", "-d", home, "-g", "users", "-s", "/usr/sbin/nologin",
                    "-K", "UID_MIN=20000", name], check=True, capture_output=True)
    u = TestUser(name, password, home)
    _users.append(u)
    os.chmod(home, 0o700)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True,
                   capture_output=True)
    return u


def as_user(user, argv, **kw):
    """Run argv as the given test user (setpriv, no PAM session: fast)."""
    return subprocess.run(["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}",
                           "--init-groups", "--"] + list(argv), **kw)


# --------------------------------------------------------------------------
# the end of both dovecot templates' service auth, and deliver's log lines on stderr
_AUTH_MASTER_AND_LDA = """\
  unix_listener auth-master {{
    mode = 0600
    user = root
  }}
}}
protocol lda {{
  log_path = /dev/stderr
  info_log_path = /dev/stderr
}}
"""


def _terminate(proc):
    """End a daemon the harness started (None or ended: nothing to do):
    SIGTERM, then SIGKILL after 15 s."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _login_services(ssl_on_connect):
    """The service *-login blocks of a private dovecot, as template text: each
    listener on 127.0.0.1 at the port of field NAME_port; ssl_on_connect marks
    the TLS-on-connect ones (imaps, pop3s)."""
    text = ""
    for service, names in (("imap-login", ("imap", "imaps")), ("pop3-login", ("pop3", "pop3s")),
                           ("managesieve-login", ("sieve",))):
        text += f"service {service} {{{{\n"
        for name in names:
            text += (f"  inet_listener {name} {{{{\n    address = 127.0.0.1\n"
                     f"    port = {{{name}_port}}\n")
            if ssl_on_connect and name in ("imaps", "pop3s"):
                text += "    ssl = yes\n"
            text += "  }}\n"
        text += "}}\n"
    return text


DOVECOT_CONF = """\
# private dovecot for homemail tests (generated by hmtest.py)
base_dir = {w}/run
state_dir = {w}/state
instance_name = hmtest-{tag}
log_path = {w}/dovecot.log
protocols = {protocols}
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = {auth_failure_delay}
mail_location = maildir:~/Maildir
first_valid_uid = 1000
default_login_user = dovenull
default_internal_user = dovecot
postmaster_address = postmaster@home.com.bo
hostname = mail.home.com.bo
""" + _login_services(True) + """\
service auth {{
  unix_listener auth-client {{
    mode = 0666
  }}
  unix_listener auth-userdb {{
    mode = 0666
  }}
""" + _AUTH_MASTER_AND_LDA + """\
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
plugin {{
  sieve = file:~/sieve;active=~/.dovecot.sieve
}}
namespace inbox {{
  inbox = yes
  separator = .
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
  mailbox Sent {{
    special_use = \\Sent
  }}
}}
{passdb}
{userdb}
{extra}
"""


def with_auth_modules(argv, workdir, auth_module_dir):
    """argv run with the built auth module (auth_module_dir) mounted over the
    installed auth module directory, in a private mount namespace; argv as
    is when auth_module_dir is empty."""
    if not auth_module_dir:
        return argv
    overlay = _mkdir(os.path.join(workdir, "authmods"), 0o755)
    stock = "/usr/lib/dovecot/modules/auth"
    for src in (stock, auth_module_dir):
        for n in os.listdir(src):
            if n.endswith(".so"):
                shutil.copy2(os.path.join(src, n), os.path.join(overlay, n))
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            f'mount --bind "$0" {stock} && exec "$@"', overlay] + argv


class Dovecot:
    """A private dovecot instance (see module docstring)."""

    def __init__(self, tmp_path=None, users=(), extra_conf="", protocols="imap pop3",
                 passdb_conf=None, userdb_conf=None, auth_module_dir=None,
                 managesieve=None, auth_failure_delay="2 secs", env=None, probe=True):
        """probe=False: no start-up userdb lookup (for a test whose auth
        process is meant to fail)."""
        self.probe = probe
        self.w = _workdir("dovecot")
        self.tag = os.path.basename(self.w)
        self.users = list(users)
        self.imap_port, self.imaps_port = free_port(), free_port()
        self.pop3_port, self.pop3s_port = free_port(), free_port()
        self.sieve_port = free_port()
        if managesieve is None:
            managesieve = os.path.exists("/usr/lib/dovecot/managesieve")
        if managesieve and "sieve" not in protocols.split():
            protocols += " sieve"
        self.protocols = protocols
        self.auth_module_dir = auth_module_dir
        self.env = env or {}
        self.cert, self.key = test_cert()
        self.passwd_file = os.path.join(self.w, "passwd")
        self._write_passwd()
        if passdb_conf is None:
            passdb_conf = ("passdb {\n  driver = passwd-file\n"
                           f"  args = scheme=SHA512-CRYPT {self.passwd_file}\n}}")
        if userdb_conf is None:
            userdb_conf = "userdb {\n  driver = passwd\n}"
        self.conf_path = os.path.join(self.w, "dovecot.conf")
        self.base_dir = os.path.join(self.w, "run")
        for sub in ("run", "state"):
            _mkdir(os.path.join(self.w, sub), 0o755)
        with open(self.conf_path, "w") as f:
            f.write(self._conf_text(
                w=self.w, tag=self.tag, protocols=protocols, cert=self.cert, key=self.key,
                auth_failure_delay=auth_failure_delay,
                imap_port=self.imap_port, imaps_port=self.imaps_port,
                pop3_port=self.pop3_port, pop3s_port=self.pop3s_port,
                sieve_port=self.sieve_port, passdb=passdb_conf, userdb=userdb_conf,
                extra=extra_conf))
        self.log_path = os.path.join(self.w, "dovecot.log")
        self.auth_client_socket = os.path.join(self.base_dir, "auth-client")
        self.auth_userdb_socket = os.path.join(self.base_dir, "auth-userdb")
        self.auth_master_socket = os.path.join(self.base_dir, "auth-master")
        self.proc = None

    def _conf_text(self, **fields):
        """dovecot.conf of this instance: the harness's template."""
        return DOVECOT_CONF.format(**fields)

    def _write_passwd(self):
        with open(self.passwd_file, "w") as f:
            for u in self.users:
                h = crypt.crypt(u.password, crypt.mksalt(crypt.METHOD_SHA512))
                f.write(f"{u.name}:{h}\n")
        os.chmod(self.passwd_file, 0o644)

    def add_user(self, u):
        self.users.append(u)
        self._write_passwd()

    def start(self):
        argv = with_auth_modules(["dovecot", "-F", "-c", self.conf_path],
                                 self.w, self.auth_module_dir)
        env = dict(os.environ, **self.env)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.w, "stdout"), "w"),
                                     stderr=subprocess.STDOUT, env=env)
        def up():
            if self.proc.poll() is not None:      # a config error ends it at once
                raise RuntimeError(f"dovecot exited with {self.proc.returncode} at start:\n"
                                   + self.log())
            if not os.path.exists(self.auth_master_socket):
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.imap_port), timeout=0.5):
                    return True
            except OSError:
                return False
        try:
            wait_for(up, 20, what="dovecot's IMAP listener and auth sockets")
        except RuntimeError:
            self.stop()
            raise
        except TimeoutError as ex:
            self.stop()
            raise RuntimeError(f"dovecot did not start: {ex}\n" + self.log()) from None
        if self.probe:
            self._probe_auth()
        return self

    def _probe_auth(self):
        """Start-up probe: one userdb lookup of a name nobody has.  "not
        found" (67) or found (0) means the auth process and its modules
        loaded; anything else stops the test with Dovecot's own errors (an
        auth module that does not load makes every login hang and fail)."""
        name = f"hmtest-probe-{secrets.token_hex(4)}"
        r = self.doveadm("user", "-u", name)
        if r.returncode in (0, 67):
            return
        time.sleep(0.3)          # the log process writes asynchronously
        errors = [ln for ln in self.log().splitlines()
                  if "Fatal:" in ln or "Error:" in ln or "Panic:" in ln]
        self.stop()
        raise RuntimeError(f"dovecot's auth does not answer (start-up lookup of {name}: exit "
                           f"{r.returncode}: {r.stderr.strip()})\n" + "\n".join(errors[-15:]))

    def stop(self):
        _terminate(self.proc)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        out = ""
        for n in ("dovecot.log", "stdout"):
            p = os.path.join(self.w, n)
            if os.path.exists(p):
                out += open(p, errors="replace").read()
        return out

    def doveadm(self, *args, input=None, check=False):
        return subprocess.run(["doveadm", "-c", self.conf_path] + list(args),
                              input=input, capture_output=True, text=True, check=check)

    def imap(self, user, password=None, tls=True):
        import imaplib
        if tls:
            c = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=client_tls_context())
        else:
            c = imaplib.IMAP4("127.0.0.1", self.imap_port)
        c.login(user.name if hasattr(user, "name") else user,
                password or getattr(user, "password", None))
        return c

    def pop3(self, user, password=None):
        import poplib
        c = poplib.POP3_SSL("127.0.0.1", self.pop3s_port, context=client_tls_context())
        c.user(user.name if hasattr(user, "name") else user)
        c.pass_(password or getattr(user, "password", None))
        return c

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


# --------------------------------------------------------------------------
def _claim_slot():
    """Claim an Exim trusted-config slot: (dir, locked file object)."""
    _mkdir(SLOTS, 0o755, (0, 0))
    wanted = [f"{SLOTS}/{i:02d}/exim.conf" for i in range(NSLOTS)]
    lk = open(f"{SLOTS}/.trusted.lock", "a")
    fcntl.flock(lk, fcntl.LOCK_EX)
    try:
        have = set()
        if os.path.exists(TRUSTED):
            have = set(open(TRUSTED).read().split())
        missing = [p for p in wanted if p not in have]
        if missing:
            with open(TRUSTED, "a") as f:
                f.write("".join(p + "\n" for p in missing))
            os.chmod(TRUSTED, 0o644)
    finally:
        fcntl.flock(lk, fcntl.LOCK_UN)
        lk.close()
    for i in range(NSLOTS):
        d = _mkdir(f"{SLOTS}/{i:02d}", 0o755, (0, 0))
        f = open(os.path.join(d, "lock"), "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return d, f
        except BlockingIOError:
            f.close()
    raise RuntimeError("no free exim trusted-config slot")


EXIM_CONF = """\
# private exim4 for homemail tests (generated by hmtest.py)
exim_user = Debian-exim
exim_group = Debian-exim
primary_hostname = mail.home.com.bo
qualify_domain = home.com.bo
domainlist local_domains = home.com.bo : localhost
spool_directory = {w}/spool
log_file_path = {w}/log/%slog
pid_file_path = {w}/exim.pid
daemon_smtp_ports = {port}
local_interfaces = {listen}
never_users = root
host_lookup =
rfc1413_hosts =
smtp_accept_queue_per_connection = 0
smtp_accept_max = 100
smtp_receive_timeout = 60s
queue_run_max = 4
remote_max_parallel = 4
keep_environment =
message_size_limit = {message_size_limit}
freeze_tell =
ignore_bounce_errors_after = 1h
timeout_frozen_after = 2d
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data
{tls}
{local_scan}
{extra_main}

begin acl

acl_check_rcpt:
  accept  hosts = :
  # the harness's start-up probe (its local part is random per instance)
  accept  local_parts = {probe_local}
          domains = +local_domains
  deny    message = Restricted characters in address
          local_parts = ^[.] : ^.*[@%!/|]
{rcpt_acl}
  accept  authenticated = *
  accept  domains = +local_domains
{verify_recipient}
  deny    message = relay not permitted

acl_check_data:
{data_acl}
  accept

begin routers

hmtest_probe:
  driver = redirect
  domains = +local_domains
  local_parts = {probe_local}
  data = :blackhole:

{routers}

homemail_local:
  driver = accept
  domains = +local_domains
  check_local_user
  transport = homemail
  cannot_route_message = Unknown user

outbox:
  driver = accept
  domains = ! +local_domains
  transport = outbox

begin transports

homemail:
  driver = pipe
  command = {transport_command}
  message_prefix =
  message_suffix =
  log_output
  delivery_date_add
  envelope_to_add
  return_path_add
  temp_errors = 64 : 69 : 70 : 71 : 72 : 73 : 74 : 75 : 78
{transport_extra}

outbox:
  driver = appendfile
  directory = {w}/outbox
  maildir_format
  user = Debian-exim
  group = Debian-exim
  envelope_to_add
  return_path_add

{transports}

begin retry

*   *   F,2d,1m

begin rewrite

begin authenticators

{auth}
"""

EXIM_AUTH = """\
dovecot_plain:
  driver = dovecot
  public_name = PLAIN
  server_socket = {sock}
  server_set_id = $auth1
  {adv}

dovecot_login:
  driver = dovecot
  public_name = LOGIN
  server_socket = {sock}
  server_set_id = $auth1
  {adv}
"""


class Exim:
    """A private exim4 daemon on 127.0.0.1 (see module docstring).

    Mail for local users goes through the `homemail` pipe transport
    (transport_command, run as the recipient); mail for other domains is
    captured in outbox/ (a Maildir) instead of leaving the machine.
    """

    def __init__(self, tmp_path=None, transport_command=None, local_scan=None,
                 rcpt_acl="", auth_client_socket=None, extra_main="", tls=True,
                 verify_recipient=False, data_acl="", routers="", transports="",
                 transport_extra="", message_size_limit="100M", env=None, probe=True,
                 host=None):
        """probe=False: no start-up probe message (for a test whose Exim is
        meant to refuse or defer every message).  host: an hm_world.Host to
        run in (its namespace, resolver and address, beside 127.0.0.1)."""
        self._setup_dirs(host)
        if transport_command is None:
            transport_command = os.path.join(BUILD, "homemail-deliver")
        tls_conf = ""
        adv = ""
        if tls:
            crt, key = test_cert()
            tls_conf = (f"tls_advertise_hosts = *\ntls_certificate = {crt}\n"
                        f"tls_privatekey = {key}\n")
            adv = "server_advertise_condition = ${if eq{$tls_in_cipher}{}{no}{yes}}"
        auth = ""
        if auth_client_socket:
            auth = EXIM_AUTH.format(sock=auth_client_socket, adv=adv)
        self.env = env or {}
        self.probe = probe
        self.probe_rcpt = f"hmtest-probe-{secrets.token_hex(6)}@{MAIL_DOMAIN}"
        self.probe_sender = "hmtest@probe.invalid"
        conf = EXIM_CONF.format(
            probe_local=self.probe_rcpt.split("@")[0],
            w=self.w, port=self.smtp_port, tls=tls_conf,
            local_scan=f"local_scan_path = {local_scan}" if local_scan else "",
            extra_main=extra_main, rcpt_acl=rcpt_acl, data_acl=data_acl,
            verify_recipient="          verify = recipient" if verify_recipient else "",
            routers=routers, transports=transports, transport_extra=transport_extra,
            transport_command=transport_command, auth=auth,
            message_size_limit=message_size_limit,
            listen="127.0.0.1" if host is None else f"<; 127.0.0.1 ; {host.addr}")
        with open(self.conf_path, "w") as f:
            f.write(conf)
        os.chmod(self.conf_path, 0o644)
        self.proc = None
        ref = weakref.ref(self)
        _cleanups.append(lambda: ref() is not None and ref().stop())

    def _setup_dirs(self, host=None):
        """Work dir, trusted-config slot, port, spool/log/outbox (owned by Exim's user)."""
        self.host = host
        self.addr = host.addr if host is not None else "127.0.0.1"
        self.w = _workdir("exim")
        self.slot_dir, self._slot_lock = _claim_slot()
        self.conf_path = os.path.join(self.slot_dir, "exim.conf")
        self.smtp_port = free_port()
        exim_ids = (pwd.getpwnam("Debian-exim").pw_uid, grp.getgrnam("Debian-exim").gr_gid)
        for sub in ("spool", "log"):
            _mkdir(os.path.join(self.w, sub), 0o750, exim_ids)
        self.outbox = _mkdir(os.path.join(self.w, "outbox"), 0o755, exim_ids)

    def __del__(self):
        # The slot (its config file) is reused only after the daemon is gone.
        try:
            if getattr(self, "proc", None) is not None:
                self.stop()
        finally:
            lk = getattr(self, "_slot_lock", None)
            if lk is not None:
                lk.close()
                self._slot_lock = None

    def exim(self, *args, input=None, check=False, text=True):
        """Run exim4 with this instance's config (as root)."""
        return subprocess.run(self._argv(["exim4", "-C", self.conf_path] + list(args)),
                              input=input,
                              capture_output=True, text=text, check=check,
                              env=dict(os.environ, **self.env))

    def start(self):
        r = self.exim("-bV")
        if r.returncode != 0:
            raise RuntimeError("exim config check failed:\n" + r.stdout + r.stderr)
        self.proc = subprocess.Popen(self._argv(["exim4", "-C", self.conf_path, "-bdf"]
                                                + getattr(self, "daemon_args", [])),
                                     stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.w, "stdout"), "w"),
                                     stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **self.env))
        self.await_ready()
        return self

    def _argv(self, argv):
        return argv if self.host is None else self.host.argv(argv)

    def await_ready(self):
        """Wait for the listener (failing at once if the daemon exits), then
        send the start-up probe: one small message that must be accepted.
        On failure the daemon is stopped and the error carries Exim's own
        log lines (a module that does not load answers 451 to every message)."""
        def up():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"exim exited with {self.proc.returncode} at start:\n"
                                   + self.log_tail())
            try:
                with socket.create_connection((self.addr, self.smtp_port), timeout=0.5):
                    return True
            except OSError:
                return False
        try:
            wait_for(up, 20, what=f"exim on port {self.smtp_port}")
        except TimeoutError:
            self.stop()
            raise RuntimeError("exim did not start:\n" + self.log_tail())
        if not self.probe:
            return
        m = (f"From: <{self.probe_sender}>\r\nTo: <{self.probe_rcpt}>\r\n"
             f"Subject: hmtest start-up probe\r\nDate: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
             f"Message-ID: <{secrets.token_hex(8)}"
             f"@probe.invalid>\r\n\r\nprobe\r\n").encode()
        try:
            send(self.smtp_port, self.probe_sender, [self.probe_rcpt], m, host=self.addr,
                 source="127.0.0.1" if self.host is None else None)
        except (smtplib.SMTPException, OSError) as ex:
            time.sleep(0.3)          # Exim writes its log lines after the reply
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"exim on port {self.smtp_port} does not accept mail "
                               f"(start-up probe to {self.probe_rcpt}): {ex}\n{tail}")
        if getattr(self, "daemon_args", None):
            # SANITIZE=1 (PackageExim): the probe waits for a queue run; a
            # test starts with an empty queue as it would without it
            self.wait_queue_empty(60)

    def log_tail(self, n=15):
        """Exim's panic log, then the last n lines of its main and reject logs."""
        out = ""
        for name in ("paniclog", "mainlog", "rejectlog"):
            text = self._log(name)
            if text:
                lines = text.splitlines()
                if name == "rejectlog":   # its header dumps are noise here
                    lines = [ln for ln in lines if ln[:2] == "20"]
                out += f"--- {name}\n" + "\n".join(lines if name == "paniclog" else lines[-n:]) + "\n"
        return out

    def stop(self):
        _terminate(self.proc)
        self.proc = None

    def _log(self, name):
        p = os.path.join(self.w, "log", name)
        return open(p, errors="replace").read() if os.path.exists(p) else ""

    def mainlog(self):
        return self._log("mainlog")

    def rejectlog(self):
        return self._log("rejectlog")

    def paniclog(self):
        return self._log("paniclog")

    def queue_run(self, force=True):
        """One synchronous queue run (-qff: also frozen, ignore retry times)."""
        return self.exim("-qff" if force else "-q")

    def queue_count(self):
        r = self.exim("-bpc")
        return int(r.stdout.strip() or 0)

    def wait_queue_empty(self, timeout=60):
        wait_for(lambda: self.queue_count() == 0, timeout, 0.2, "exim queue to empty")

    def outbox_messages(self):
        """Raw bytes of every message Exim sent to a non-local domain."""
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.outbox, sub)
            if os.path.isdir(d):
                for n in sorted(os.listdir(d)):
                    out.append(open(os.path.join(d, n), "rb").read())
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


def send(port, mail_from, rcpt_tos, msg, source="127.0.0.1", host="127.0.0.1",
         starttls=False, login=None):
    """Send one message over SMTP; returns smtplib's dict of refused recipients."""
    if isinstance(rcpt_tos, str):
        rcpt_tos = [rcpt_tos]
    if isinstance(msg, str):
        msg = msg.encode()
    with smtplib.SMTP(host, port, source_address=(source, 0) if source else None,
                      timeout=60) as s:
        s.ehlo("client.example")
        if starttls:
            s.starttls(context=client_tls_context())
            s.ehlo("client.example")
        if login:
            s.login(*login)
        return s.sendmail(mail_from, rcpt_tos, msg)


def maildir_files(maildir, folder=""):
    """Paths of the messages in a Maildir folder ('' = INBOX, 'A.B' = .A.B)."""
    d = maildir if not folder else os.path.join(maildir, "." + folder)
    out = []
    for sub in ("new", "cur"):
        p = os.path.join(d, sub)
        if os.path.isdir(p):
            out += [os.path.join(p, n) for n in sorted(os.listdir(p))]
    return out


def make_message(subject="test", body="hello\n", sender="alice@example.org",
                 to="bob@home.com.bo", extra_headers=""):
    """A small RFC 5322 message as bytes (CRLF line ends, as on the wire)."""
    mid = f"<{secrets.token_hex(8)}@example.org>"
    hdr = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
           f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
           f"Message-ID: {mid}\r\n{extra_headers}")
    return (hdr + "\r\n" + body.replace("\r\n", "\n").replace("\n", "\r\n")).encode()


# --------------------------------------------------------------------------
# The configuration the package installs, run privately.
CONF_SRC = os.path.join(TOP, "conf")
STOCK_EXIM_PKG = "exim4-config"
# Where the package's snippets name an installed file: what stands in for it here.
PKG_SHARE = "/usr/share/homemail"


def _stock_exim_confd():
    """Debian's own conf.d files (those the exim4-config package installs),
    as {relative path: absolute path}: the host's conf.d may also hold an
    installed homemail and a site's 000_localmacros, which must not leak in."""
    r = subprocess.run(["dpkg-query", "-L", STOCK_EXIM_PKG], capture_output=True, text=True,
                       check=True)
    root = "/etc/exim4/conf.d/"
    return {p[len(root):]: p for p in r.stdout.splitlines()
            if p.startswith(root) and os.path.isfile(p)}


def _substitute(text, paths):
    for a, b in paths.items():
        text = text.replace(a, b)
    return text


def _sanitize_delivery_macros(macros):
    """SANITIZE=1: the package's routers dlfunc() the ASan-built
    homemail_scan.so in the delivery process too.  A delivery that the
    receiving process (Exim's user) starts is a re-exec of the setuid binary,
    where glibc ignores LD_PRELOAD (secure mode): the module would not load
    and every local delivery would defer.  So messages are queued and the
    daemon's own queue runner delivers them (-q1s: root re-execs root, no
    secure mode), with the sanitizer variables kept in Exim's environment.
    Nothing when SANITIZE is off."""
    if not SANITIZE:
        return ""
    lines = ["MAIN_KEEP_ENVIRONMENT = LD_PRELOAD : ASAN_OPTIONS : UBSAN_OPTIONS"]
    if "queue_only" not in macros:
        lines.append("queue_only = true")
    return "\n".join(lines)


PKG_EXIM_OUTBOX = """\
### router/050_hmtest_outbox  (hmtest: not part of the package)
# Mail for other domains is captured in a Maildir instead of leaving the host.
hmtest_outbox:
  driver = accept
  domains = ! +local_domains
  transport = hmtest_outbox
  no_more

hmtest_probe:
  driver = redirect
  domains = +local_domains
  local_parts = postmaster
  senders = {probe_sender}
  data = :blackhole:
"""

PKG_EXIM_OUTBOX_T = """\
### transport/05_hmtest_outbox  (hmtest: not part of the package)
hmtest_outbox:
  driver = appendfile
  directory = {outbox}
  maildir_format
  user = Debian-exim
  group = Debian-exim
  envelope_to_add
  return_path_add
"""


class PackageExim(Exim):
    """A private exim4 running the configuration the package installs.

    Assembled as on a Debian host with the package: the stock conf.d of
    exim4-config, homemail's conf/exim4/conf.d laid over it (the package's
    files win where names clash), a site main/000_localmacros, then
    Debian's own update-exim4.conf (-d private confdir, -o the trusted slot).
    The site macros point the package's documented knobs (ports, TLS files,
    HOMEMAIL_* paths and sockets) at this instance; the only other additions
    are a router capturing non-local mail in outbox/ and the start-up probe's
    router (postmaster from a random sender goes to :blackhole:).

    dovecot: a started Dovecot/PackageDovecot whose auth-exim and
    auth-exim-master sockets Exim uses (None: AUTH and the userdb check point
    at missing sockets); local_scan: load homemail_scan.so; user_check: let
    the RCPT ACL's homemail_user_exists check run (it needs the auth module).
    confd: a different conf.d tree for homemail's snippets (None: conf/exim4/conf.d).
    outbox=False: no capture router; non-local mail goes out through Debian's
    own routers and transports (dnslookup + remote_smtp) as on a real host
    (a test giving host= and a World's DNS).
    """

    def __init__(self, dovecot=None, local_scan=True, user_check=True, macros="", env=None,
                 probe=True, confd=None, host=None, outbox=True, domains_file=None):
        self._setup_dirs(host)
        # the package's local_domains come from homemail's domains table
        # (main/00_homemail_macros): by default one holding MAIL_DOMAIN
        if domains_file is None:
            domains_file = os.path.join(self.w, "homemail-domains")
            with open(domains_file, "w") as f:
                f.write(MAIL_DOMAIN + "\n")
        # SANITIZE=1: homemail_scan.so needs the sanitizer runtimes preloaded
        # the package config dlfunc()s homemail_scan.so (RCPT and DATA ACLs) even
        # without local_scan: under SANITIZE=1 it needs the runtimes preloaded
        self.env = env if env is not None else sanitizer_env()
        self.probe = probe
        self.probe_sender = f"hmtest-probe-{secrets.token_hex(6)}@probe.invalid"
        self.probe_rcpt = f"postmaster@{MAIL_DOMAIN}"
        confd = confd or os.path.join(CONF_SRC, "exim4", "conf.d")
        cd = _mkdir(os.path.join(self.w, "confdir"), 0o755)
        share = _mkdir(os.path.join(self.w, "share"), 0o755)
        missing = os.path.join(self.w, "not-installed")
        paths = {f"{PKG_SHARE}/exim4/": share + "/"}
        files = {rel: open(src).read() for rel, src in _stock_exim_confd().items()}
        for d, _, names in os.walk(confd):
            for n in names:
                rel = os.path.relpath(os.path.join(d, n), confd)
                files[rel] = _substitute(open(os.path.join(d, n)).read(), paths)
        crt, key = test_cert()
        base = dovecot.base_dir if dovecot else missing
        files["main/000_localmacros"] = "\n".join([
            "# site macros of a private test instance (hmtest.py)",
            f"CONFDIR = {cd}",
            f"SPOOLDIR = {self.w}/spool",
            f"log_file_path = {self.w}/log/%slog",
            f"pid_file_path = {self.w}/exim.pid",
            f"HOMEMAIL_SMTP_PORTS = {self.smtp_port}",
            "MAIN_LOCAL_INTERFACES = " + ("127.0.0.1" if host is None
                                          else f"<; 127.0.0.1 ; {host.addr}"),
            "MAIN_HARDCODE_PRIMARY_HOSTNAME = mail.home.com.bo",
            f"MAIN_QUALIFY_DOMAIN = {MAIL_DOMAIN}",
            "MAIN_HOST_LOOKUP =",
            f"MAIN_TLS_CERTIFICATE = {crt}",
            f"MAIN_TLS_PRIVATEKEY = {key}",
            f"HOMEMAIL_DELIVER = {os.path.join(BUILD, 'homemail-deliver')}",
            f"HOMEMAIL_SCAN_SO = {os.path.join(BUILD, 'homemail_scan.so')}",
            "HOMEMAIL_AUTHDB_SO = " + (os.path.join(BUILD, "libauthdb_homemail.so")
                                       if user_check else missing),
            f"HOMEMAIL_AUTH_CLIENT_SOCKET = {base}/auth-exim",
            f"HOMEMAIL_AUTH_MASTER_SOCKET = {base}/auth-exim-master",
            f"HOMEMAIL_DOMAINS_FILE = {domains_file}",
            # no private clamd unless the test brings one (hm_clamav.Clamd)
            "" if "HOMEMAIL_AV_SCAN" in macros else "HOMEMAIL_AV_SCAN = no",
            _sanitize_delivery_macros(macros), macros, ""])
        # SANITIZE=1: see _sanitize_delivery_macros
        self.daemon_args = ["-q1s"] if SANITIZE else []
        router = PKG_EXIM_OUTBOX.format(probe_sender=self.probe_sender)
        if not outbox:
            router = router[router.index("hmtest_probe:"):]
        files["router/050_hmtest_outbox"] = router
        files["transport/05_hmtest_outbox"] = PKG_EXIM_OUTBOX_T.format(outbox=self.outbox)
        for rel, text in files.items():
            p = os.path.join(cd, "conf.d", rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        # the other includes the package ships next to homemail_scan.so
        # (router/340_homemail_accounts, transport/35_homemail_userdb)
        for n in sorted(os.listdir(os.path.join(CONF_SRC, "share", "exim4"))):
            if n != "local_scan.conf":
                with open(os.path.join(share, n), "w") as f:
                    f.write(open(os.path.join(CONF_SRC, "share", "exim4", n)).read())
        if local_scan:
            with open(os.path.join(share, "local_scan.conf"), "w") as f:
                f.write(_substitute(open(os.path.join(CONF_SRC, "share", "exim4",
                                                      "local_scan.conf")).read(),
                                    {"/usr/lib/exim4/local_scan/homemail_scan.so":
                                     os.path.join(BUILD, "homemail_scan.so")}))
        with open(os.path.join(cd, "update-exim4.conf.conf"), "w") as f:
            f.write("dc_eximconfig_configtype='internet'\n"
                    f"dc_other_hostnames='{MAIL_DOMAIN}'\ndc_local_interfaces='127.0.0.1'\n"
                    "dc_readhost=''\ndc_relay_domains=''\ndc_minimaldns='false'\n"
                    "dc_relay_nets=''\ndc_smarthost=''\nCFILEMODE='644'\n"
                    "dc_use_split_config='true'\ndc_hide_mailname=''\n"
                    "dc_mailname_in_oh='true'\ndc_localdelivery='maildir_home'\n")
        r = subprocess.run(["update-exim4.conf", "-d", cd, "-o", self.conf_path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("update-exim4.conf failed:\n" + r.stdout + r.stderr)
        os.chmod(self.conf_path, 0o644)
        self.proc = None
        ref = weakref.ref(self)
        _cleanups.append(lambda: ref() is not None and ref().stop())



PKG_DOVECOT_CONF = """\
# private dovecot running the package's conf.d snippet (generated by hmtest.py)
base_dir = {w}/run
state_dir = {w}/state
instance_name = hmtest-{tag}
log_path = {w}/dovecot.log
auth_failure_delay = {auth_failure_delay}
{auth_include}
!include {w}/conf.d/90-homemail.conf

# The private instance's plumbing, after the package's settings (later wins):
# loopback and high ports instead of the standard ones, the test users.
listen = 127.0.0.1
first_valid_uid = 1000
postmaster_address = postmaster@home.com.bo
""" + _login_services(False) + """\
service auth {{
""" + _AUTH_MASTER_AND_LDA + """\
{passdb}
{userdb}
{extra}
"""


class PackageDovecot(Dovecot):
    """A private dovecot running homemail's conf/dovecot/conf.d/90-homemail.conf
    (TLS, plaintext refusal, the auth listeners Exim uses, Sieve and quota
    settings) with its installed paths pointed at this instance: the test
    certificate, and no homemail junk plugin unless the test adds it.  Only
    the listeners' addresses and ports, the directories and the user
    database (the test users, passwd-file) are the harness's.
    snippet: a different 90-homemail.conf (None: the checkout's).

    auth_backend=True: the account database is the package's too:
    05-homemail-auth.conf and auth-homemail.conf.ext with the staged
    libauthdb_homemail.so, serving the system accounts of group `users`
    (the test users) as name@home.com.bo; the site's dovecot-authdb.conf
    points users file and lockout state at this instance."""

    def __init__(self, tmp_path=None, users=(), snippet=None, auth_backend=False, **kw):
        self._snippet = snippet or os.path.join(CONF_SRC, "dovecot", "conf.d", "90-homemail.conf")
        self._auth_backend = auth_backend
        if auth_backend:
            mod = _workdir("authmod")
            shutil.copyfile(os.path.join(BUILD, "libauthdb_homemail.so"),
                            os.path.join(mod, "libauthdb_homemail.so"))
            kw.update(auth_module_dir=mod, passdb_conf="", userdb_conf="")
            if SANITIZE:
                kw.setdefault("env", sanitizer_env())
                kw["extra_conf"] = kw.get("extra_conf", "") + sanitizer_dovecot_conf()
        super().__init__(tmp_path, users=users, managesieve=False, **kw)

    def _render_auth(self, w):
        """The package's auth include and .ext, pointed at this instance."""
        share = _mkdir(os.path.join(w, "share", "dovecot"), 0o755)
        users = os.path.join(w, "homemail-users")
        open(users, "a").close()
        os.chmod(users, 0o600)
        site = os.path.join(w, "dovecot-authdb.conf")
        with open(site, "w") as f:
            f.write(f"args = users={users} group=users domains={MAIL_DOMAIN} "
                    f"lockout={w}/state/lockout.db\n")
        paths = {f"{PKG_SHARE}/dovecot/": share + "/", "/etc/homemail/users": users,
                 "/etc/homemail/dovecot-authdb.conf": site}
        with open(os.path.join(share, "auth-homemail.conf.ext"), "w") as f:
            f.write(_substitute(open(os.path.join(CONF_SRC, "share", "dovecot",
                                                  "auth-homemail.conf.ext")).read(), paths))
        inc = os.path.join(w, "conf.d", "05-homemail-auth.conf")
        with open(inc, "w") as f:
            f.write(_substitute(open(os.path.join(CONF_SRC, "dovecot", "conf.d",
                                                  "05-homemail-auth.conf")).read(), paths))
        return f"!include {inc}"

    def _conf_text(self, **fields):
        w = fields["w"]
        d = _mkdir(os.path.join(w, "conf.d"), 0o755)
        fields["auth_include"] = self._render_auth(w) if self._auth_backend else ""
        text = ""
        if os.path.exists(self._snippet):
            text = _substitute(open(self._snippet).read(), {
                "/etc/homemail/tls/cert.pem": fields["cert"],
                "/etc/homemail/tls/private/key.pem": fields["key"],
                f"{PKG_SHARE}/dovecot/": os.path.join(w, "share") + "/"})
        with open(os.path.join(d, "90-homemail.conf"), "w") as f:
            f.write(text)
        return PKG_DOVECOT_CONF.format(**fields)
