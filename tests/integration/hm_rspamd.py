"""hm_rspamd.py — private rspamd and redis-server instances for tests and benchmarks.

Redis(): a redis-server as user redis on 127.0.0.1:<free port>, no
persistence, its own directory under /var/tmp/hmtest.

Rspamd(redis): Debian's rspamd 3.4 with the stock /etc/rspamd as CONFDIR and
a private LOCAL_CONFDIR holding what the package/playbook installs
(conf/rspamd/local.d, and conf/rspamd/offline: RBLs, remote maps, fuzzy and
DNS-based modules off) plus the test's own files; its own top-level
rspamd.conf so the normal worker (spamd protocol, what Exim talks to) and the
controller (learning, /stat) listen on free loopback ports and the proxy and
fuzzy workers not at all.  Workers run as _rspamd (-u/-g), in the foreground
(-f), no systemd.  DNS goes to a closed loopback port, so any lookup that
slipped through fails at once instead of waiting.

Both are stopped by pid at stop() and at exit (hmtest's cleanups).
"""
import json
import os
import pwd
import shutil
import subprocess
import urllib.request

import hmtest

CONF_RSPAMD = os.path.join(hmtest.CONF_SRC, "rspamd")

TOP_CONF = """\
# private rspamd of a test (hm_rspamd.py): the stock rspamd.conf's shape,
# with this instance's sockets, pid and log
.include "$CONFDIR/common.conf"

options {{
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
    .include(try=true; priority=10) "$LOCAL_CONFDIR/override.d/options.inc"
}}

logging {{
    type = "file";
    filename = "$LOGDIR/rspamd.log";
    level = "{log_level}";
}}

worker "normal" {{
    bind_socket = "127.0.0.1:{port}";
    .include "$CONFDIR/worker-normal.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/worker-normal.inc"
    .include(try=true; priority=10) "$LOCAL_CONFDIR/override.d/worker-normal.inc"
}}

worker "controller" {{
    bind_socket = "127.0.0.1:{controller_port}";
    .include "$CONFDIR/worker-controller.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/worker-controller.inc"
    .include(try=true; priority=10) "$LOCAL_CONFDIR/override.d/worker-controller.inc"
}}
"""

# test-only rules (not installed by anything): a subject word scores a
# message into a band, so a test can pick the verdict it needs offline
TEST_REGEXP = """\
# hm_rspamd.py test rules: a word in the Subject puts the message in a band
HMTEST_GREYLIST_BAND {{ re = "Subject=/hmtest-greylist-band/i"; score = {grey}; description = "test"; }}
HMTEST_JUNK_BAND {{ re = "Subject=/hmtest-junk-band/i"; score = {junk}; description = "test"; }}
HMTEST_OUT_BAND {{ re = "Subject=/hmtest-out-band/i"; score = {out}; description = "test"; }}
"""

# A spamd-protocol client sends a message with this string and rspamd
# forces the reject action (its GTUBE rule).
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


class Redis:
    """A private redis-server on 127.0.0.1 (see module docstring)."""

    def __init__(self):
        self.w = hmtest._workdir("redis")
        ids = pwd.getpwnam("redis")
        os.chown(self.w, ids.pw_uid, ids.pw_gid)
        self.port = hmtest.free_port()
        self.proc = None
        hmtest._cleanups.append(self.stop)

    def start(self):
        self.proc = subprocess.Popen(
            ["setpriv", "--reuid=redis", "--regid=redis", "--clear-groups", "--",
             "redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", self.w, "--save", "", "--appendonly", "no", "--protected-mode", "yes",
             "--logfile", os.path.join(self.w, "redis.log"), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hmtest.wait_port(self.port)
        return self

    def stop(self):
        hmtest._terminate(self.proc)
        self.proc = None

    def address(self):
        return f"127.0.0.1:{self.port}"


class Rspamd:
    """A private rspamd (see module docstring).

    redis: a started Redis; offline: install conf/rspamd/offline as the lab
    does; greylist_timeout: the greylist module's timeout (tests shorten
    rspamd's 5 min); test_rules: the HMTEST_* subject rules with these
    scores (grey, junk, out); local: {file name: text} more local.d files."""

    def __init__(self, redis, offline=True, greylist_timeout=None,
                 test_rules=(5.0, 8.0, 9.0), local=None, log_level="notice"):
        self.redis = redis
        self.w = hmtest._workdir("rspamd")
        self.port, self.controller_port = hmtest.free_port(), hmtest.free_port()
        self.dns_port = hmtest.free_port()      # nothing listens there
        ids = pwd.getpwnam("_rspamd")
        etc = os.path.join(self.w, "etc")
        self.local_d = os.path.join(etc, "local.d")
        os.makedirs(os.path.join(etc, "override.d"))
        shutil.copytree(os.path.join(CONF_RSPAMD, "local.d"), self.local_d)
        if offline:
            for n in os.listdir(os.path.join(CONF_RSPAMD, "offline")):
                shutil.copyfile(os.path.join(CONF_RSPAMD, "offline", n),
                                os.path.join(self.local_d, n))
        files = {
            # this instance's redis instead of the host's default one
            "redis.conf": f'servers = "{redis.address()}";\n',
        }
        if offline:
            files["options.inc"] = ("dns {\n  nameserver = [\"127.0.0.1:%d\"];\n"
                                    "  timeout = 0.5s;\n  retransmits = 1;\n}\n" % self.dns_port)
        if test_rules:
            g, j, o = test_rules
            files["regexp.conf"] = TEST_REGEXP.format(grey=g, junk=j, out=o)
        if greylist_timeout is not None:
            with open(os.path.join(self.local_d, "greylist.conf")) as f:
                text = f.read()
            files["greylist.conf"] = text.replace("timeout = 5min;",
                                                  f"timeout = {greylist_timeout};")
        files.update(local or {})
        for n, text in files.items():
            with open(os.path.join(self.local_d, n), "w") as f:
                f.write(text)
        for sub in ("db", "run", "log"):
            hmtest._mkdir(os.path.join(self.w, sub), 0o750, (ids.pw_uid, ids.pw_gid))
        self.conf_path = os.path.join(self.w, "rspamd.conf")
        with open(self.conf_path, "w") as f:
            f.write(TOP_CONF.format(port=self.port, controller_port=self.controller_port,
                                    log_level=log_level))
        self.vars = {"LOCAL_CONFDIR": etc, "DBDIR": os.path.join(self.w, "db"),
                     "RUNDIR": os.path.join(self.w, "run"),
                     "LOGDIR": os.path.join(self.w, "log")}
        self.proc = None
        hmtest._cleanups.append(self.stop)

    def argv(self):
        a = ["rspamd", "-f", "-u", "_rspamd", "-g", "_rspamd", "-c", self.conf_path]
        for k, v in self.vars.items():
            a += ["--var", f"{k}={v}"]
        return a

    def start(self):
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.w, "stdout"), "w"),
                                     stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"rspamd exited with {self.proc.returncode}:\n" + self.log())
            try:
                return self.http("/ping", controller=False).strip() == b"pong" and \
                    self.http("/ping").strip() == b"pong"
            except OSError:
                return False
        try:
            hmtest.wait_for(up, 60, 0.1, f"rspamd on ports {self.port}/{self.controller_port}")
        except (TimeoutError, RuntimeError):
            log = self.log()
            self.stop()
            raise RuntimeError("rspamd did not start:\n" + log[-3000:])
        return self

    def stop(self):
        """SIGTERM to the main process (it ends its workers), then wait."""
        hmtest._terminate(self.proc)
        self.proc = None

    def log(self):
        text = ""
        for n in ("stdout", os.path.join("log", "rspamd.log")):
            p = os.path.join(self.w, n)
            if os.path.exists(p):
                text += open(p, errors="replace").read()
        return text

    def http(self, path, controller=True, data=None, headers=None):
        port = self.controller_port if controller else self.port
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     headers=headers or {})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def stat(self):
        """The controller's /stat (JSON) as a dict."""
        return json.loads(self.http("/stat"))

    def learned(self):
        """{'ham': n, 'spam': n}: messages Bayes learned per class, as rspamd
        keeps them in its statistics store (redis hash RS, learns_ham /
        learns_spam; the controller's /stat statfiles lag behind)."""
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis.port),
                            "hmget", "RS", "learns_ham", "learns_spam"],
                           capture_output=True, text=True, check=True)
        ham, spam = (r.stdout.splitlines() + ["", ""])[:2]
        return {"ham": int(ham or 0), "spam": int(spam or 0)}

    def scanned(self):
        return int(self.stat().get("scanned", 0))

    def check(self, raw, headers=None):
        """Scan raw bytes over HTTP (/checkv2 of the normal worker): result dict."""
        return json.loads(self.http("/checkv2", controller=False, data=raw, headers=headers))

    def rspamc(self, *args):
        """rspamc pointed at this instance's controller."""
        return ["/usr/bin/rspamc", "-h", f"127.0.0.1:{self.controller_port}"] + list(args)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()
