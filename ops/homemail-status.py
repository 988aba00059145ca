#!/usr/bin/python3
"""homemail-status — is this mail host healthy?  One verdict per line.

What for: an admin runs it on a live host (cron runs it daily, --cron) and
  reads one line per check: ok / warning / error, what was seen, and the
  one-line fix where there is one.  Checks: services answering on their
  ports and auth sockets; TLS per listener (expected certificate, days left,
  chain, names); DNS as the zone the host publishes says vs what the mail
  daemons' resolver (/etc/resolv.conf) answers; Exim's queue, frozen
  messages, panic log, last hour's deferrals; Dovecot auth failures, active
  lockouts, users over 90 % of quota; disk and inode space; the last
  backup; homemail's own pieces loaded and of the package's version.
  Configuration: /etc/homemail/status.conf (homemail-status(8)); every key
  has a default that fits a Debian host provisioned by the playbook.
Relies on: Python's standard library, homemail_admin.py (what the admin
  tools share: config reader, exit codes, command runner, log readers) and
  the Debian tools a mail host has anyway (exim4, doveadm, doveconf, dig,
  named-compilezone, openssl).
  Stdlib only on purpose: the tool must run on a host whose Python modules
  are half broken.
How it fails: a check that cannot run is itself an error line (never a
  crash, never a silent pass); a usage error exits 64, an unreadable or bad
  configuration 78; otherwise the exit code is the worst verdict
  (0 ok, 1 warning, 2 error).
"""
import base64
import concurrent.futures
import datetime
import fcntl
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import time

# The shared module (homemail_admin.py): beside this file in build/, else
# the package's private directory; no byte-code caches left behind.
sys.dont_write_bytecode = True
sys.path[:0] = [os.path.dirname(os.path.realpath(__file__)), "@PYTHONDIR@"]
import homemail_admin as hm  # noqa: E402

PROG = "homemail-status"
VERSION = "@VERSION@"
OK, WARN, ERR, SKIP = 0, 1, 2, -1
NAMES = {OK: "ok", WARN: "warning", ERR: "error", SKIP: "-"}
COLOURS = {OK: "\033[32m", WARN: "\033[33m", ERR: "\033[1;31m", SKIP: "\033[2m"}
TIMEOUT = 5.0          # seconds for one network probe

USAGE = f"""\
usage: {PROG} [--config FILE] [--json] [--prometheus FILE] [--cron] [--no-color]
       {PROG} --help | --version

Checks this mail host and prints one line per check: ok, warning or error,
what was seen and how to fix it.  Exit status: the worst verdict (0 ok,
1 warning, 2 error); 64 usage error, 78 bad configuration.

  --config FILE      configuration (default /etc/homemail/status.conf)
  --json             print the results as JSON instead of the table
  --prometheus FILE  also write them as a node_exporter textfile (atomically)
  --cron             print nothing; mail the table to the postmaster when
                     something is not ok (the daily cron job)
  --no-color         no colour even on a terminal (NO_COLOR does the same)
"""

DEFAULTS = {
    "hostname": "",                 # HELO name; empty: Exim's primary_hostname
    "domains": "",                  # mail domains; empty: the hostname's parent
    "address": "127.0.0.1",         # where the listeners are probed
    "smtp_ports": "25 587",         # SMTP with STARTTLS
    "smtps_ports": "465",           # SMTP with TLS on connect
    "imaps_port": "993",
    "pop3s_port": "995",
    "sieve_port": "4190",
    "https_port": "443",            # Roundcube (apache2); 0: not checked
    "mta_sts_port": "443",          # HTTPS port of mta-sts.<domain>; 0: policy not fetched
    "dns_server": "",               # this host's own bind9 (address); empty: none
    "resolver": "",                 # empty: /etc/resolv.conf's, the mail daemons' resolver
    "rspamd": "auto",               # host:port, no; auto: as Exim's spamd_address says
    "clamd": "auto",                # socket or "address port", no; auto: Exim's av_scanner
    "auth_sockets": "/run/dovecot/auth-client /run/dovecot/auth-userdb "
                    "/run/dovecot/auth-master /run/dovecot/auth-exim "
                    "/run/dovecot/auth-exim-master",
    "tls_cert": "/etc/homemail/tls/cert.pem",
    "tls_ca": "",                   # CA file the chain must verify against; empty: system
    "tls_warn_days": "21",
    "tls_error_days": "7",
    "zone_files": "auto",           # DOMAIN=FILE ...; auto: /etc/bind/db.DOMAIN if present
    "dkim_selectors": "auto",       # current and next; auto: Exim's DKIM_SELECTOR macro
    "exim": "exim4",
    "exim_config": "",              # -C FILE; empty: Debian's
    "queue_warn": "100",
    "queue_error": "1000",
    "queue_age_warn": "6h",
    "queue_age_error": "2d",
    "deferrals_warn": "20",         # per hour
    "doveadm": "doveadm",
    "doveconf": "doveconf",
    "dovecot_config": "",           # -c FILE; empty: Debian's
    "dovecot_log": "/var/log/dovecot.log",
    "auth_failures_warn": "50",     # per hour
    "lockout_db": "/var/lib/homemail/lockout.db",
    "quota_warn": "90",             # percent
    "disk_paths": "/home /var/vmail /var/spool/exim4 /var/log",
    "disk_warn": "85",
    "disk_error": "95",
    "backup_state": "/var/lib/homemail/backup/last.json",
    "backup_warn_age": "26h",
    "backup_error_age": "50h",
    "backup_required": "auto",      # yes, no, auto (yes when homemail-backup is installed)
    "local_scan_probe": "yes",
    "auth_module": "yes",           # Dovecot's passdb must be homemail's
    "junk_plugin": "auto",          # yes, no, auto (when the plugin is installed)
    "programs": "/usr/lib/homemail/homemail-deliver /usr/bin/homemail-sieve "
                "/usr/bin/homemail-scan /usr/sbin/homemail-user",
    "package_files": "yes",         # compare installed files with dpkg's md5sums
    "postmaster": "postmaster",
    "sendmail": "/usr/sbin/sendmail",
}


def duration(text):
    """'90', '90s', '15m', '6h', '2d' -> seconds"""
    m = re.fullmatch(r"(\d+)\s*([smhdw]?)", text.strip())
    if not m:
        raise hm.ConfigError(f"bad duration {text!r}")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400,
                              "w": 604800}[m.group(2)]


def human_age(secs):
    secs = int(secs)
    if secs < 120:
        return f"{secs} s"
    if secs < 7200:
        return f"{secs // 60} min"
    if secs < 172800:
        return f"{secs // 3600} h"
    return f"{secs // 86400} d"


class Result:
    """One line of the report; metrics: [(name, {labels}, value)] for Prometheus."""

    def __init__(self, check, verdict, detail, fix="", metrics=()):
        self.check, self.verdict, self.detail, self.fix = check, verdict, detail, fix
        self.metrics = list(metrics)

    def as_dict(self):
        return {"check": self.check, "verdict": NAMES[self.verdict] if self.verdict != SKIP
                else "skipped", "detail": self.detail, "fix": self.fix}


run = hm.run          # (rc, stdout, stderr); 127 not installed, 124 no answer


class Host:
    """What the checks share: configuration and facts learnt once."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.served_certs = {}      # port -> DER of the certificate it serves
        self._exim_bp = {}

    def words(self, key):
        return self.cfg[key].split()

    def exim_argv(self, *args):
        return hm.with_config(self.cfg["exim"], "-C", self.cfg["exim_config"], *args)

    def exim_option(self, name):
        """Exim's value of a main option or macro (None when Exim cannot say)."""
        if name not in self._exim_bp:
            args = ("-bP", "macro", name) if name.isupper() else ("-bP", name)
            rc, out, _ = run(self.exim_argv(*args), timeout=20)
            val = None
            if rc == 0:
                m = re.match(r"^\S+\s*=\s*(.*)$", out.strip())
                val = m.group(1).strip() if m else None
            self._exim_bp[name] = val
        return self._exim_bp[name]

    def doveadm_argv(self, *args):
        return hm.with_config(self.cfg["doveadm"], "-c", self.cfg["dovecot_config"], *args)

    def doveconf_argv(self, *args):
        return hm.with_config(self.cfg["doveconf"], "-c", self.cfg["dovecot_config"], *args)

    def hostname(self):
        if self.cfg["hostname"]:
            return self.cfg["hostname"].rstrip(".").lower()
        h = self.exim_option("primary_hostname")
        return (h or socket.getfqdn()).rstrip(".").lower()

    def domains(self):
        if self.cfg["domains"]:
            return [d.rstrip(".").lower() for d in self.cfg["domains"].split()]
        h = self.hostname()
        return [h.split(".", 1)[1] if "." in h else h]


# ---------------------------------------------------------------------------
# services and TLS
def _recv_line(sock_file):
    line = sock_file.readline(4096)
    if not line:
        raise OSError("connection closed")
    return line.decode("latin-1").rstrip("\r\n")


def _smtp_reply(f):
    """Read one SMTP reply; (code, last line)."""
    while True:
        line = _recv_line(f)
        if len(line) < 4 or line[3] != "-":
            return line[:3], line


def tls_context(cfg, verify):
    if verify:
        ctx = ssl.create_default_context(cafile=cfg["tls_ca"] or None)
        ctx.check_hostname = False    # names are checked separately, with a clearer message
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def probe_listener(host, kind, port):
    """Connect, speak the protocol up to (and through) TLS.  Returns
    (greeting, der, chain_error): chain_error None when the chain verified."""
    addr = host.cfg["address"]
    chain_error = None
    for verify in (True, False):
        raw = socket.create_connection((addr, port), timeout=TIMEOUT)
        try:
            greeting = ""
            if kind in ("smtp",):
                f = raw.makefile("rb")
                code, greeting = _smtp_reply(f)
                if code != "220":
                    raise OSError(f"greeting {greeting!r}")
                raw.sendall(b"EHLO homemail-status.invalid\r\n")
                code, line = _smtp_reply(f)
                raw.sendall(b"STARTTLS\r\n")
                code, line = _smtp_reply(f)
                if code != "220":
                    raise OSError(f"STARTTLS refused: {line!r}")
            elif kind == "sieve":
                f = raw.makefile("rb")
                while True:
                    line = _recv_line(f)
                    if line.startswith("OK"):
                        break
                    if line.startswith(("NO", "BYE")):
                        raise OSError(f"greeting {line!r}")
                    greeting = greeting or line
                raw.sendall(b"STARTTLS\r\n")
                line = _recv_line(f)
                if not line.startswith("OK"):
                    raise OSError(f"STARTTLS refused: {line!r}")
            ctx = tls_context(host.cfg, verify)
            try:
                s = ctx.wrap_socket(raw, server_hostname=host.hostname())
            except ssl.SSLCertVerificationError as ex:
                chain_error = ex.verify_message or str(ex)
                raw.close()
                continue
            try:
                s.settimeout(TIMEOUT)
                der = s.getpeercert(binary_form=True)
                f = s.makefile("rb")
                if kind == "smtps":
                    code, greeting = _smtp_reply(f)
                    if code != "220":
                        raise OSError(f"greeting {greeting!r}")
                elif kind == "imaps":
                    greeting = _recv_line(f)
                    if not greeting.startswith("* OK"):
                        raise OSError(f"greeting {greeting!r}")
                elif kind == "pop3s":
                    greeting = _recv_line(f)
                    if not greeting.startswith("+OK"):
                        raise OSError(f"greeting {greeting!r}")
                elif kind == "https":
                    s.sendall(f"HEAD / HTTP/1.0\r\nHost: {host.hostname()}\r\n\r\n".encode())
                    greeting = _recv_line(f)
                    if not greeting.startswith("HTTP/"):
                        raise OSError(f"answer {greeting!r}")
                elif kind == "smtp":
                    s.sendall(b"EHLO homemail-status.invalid\r\n")
                    _smtp_reply(f)
                    s.sendall(b"QUIT\r\n")
                return greeting, der, chain_error
            finally:
                s.close()
        finally:
            raw.close()
    raise OSError("no TLS handshake")


_cert_cache = {}


def cert_info(der):
    """{'not_after': epoch, 'names': [...], 'subject': str, 'spki': DER} of a certificate."""
    key = hashlib.sha256(der).hexdigest()
    if key in _cert_cache:
        return _cert_cache[key]
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-enddate", "-subject",
                        "-ext", "subjectAltName", "-pubkey", "-nameopt", "RFC2253"],
                       input=der, capture_output=True, timeout=10)
    out = p.stdout.decode("latin-1")
    info = {"not_after": None, "names": [], "subject": "", "spki": b""}
    m = re.search(r"notAfter=(.+)", out)
    if m:
        info["not_after"] = datetime.datetime.strptime(
            m.group(1).strip(), "%b %d %H:%M:%S %Y GMT").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    m = re.search(r"subject=(.*)", out)
    info["subject"] = m.group(1).strip() if m else ""
    info["names"] = [n.lower() for n in re.findall(r"DNS:([^,\s]+)", out)]
    if not info["names"]:
        m = re.search(r"CN=([^,]+)", info["subject"])
        info["names"] = [m.group(1).lower()] if m else []
    m = re.search(r"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", out, re.S)
    info["spki"] = base64.b64decode("".join(m.group(1).split())) if m else b""
    _cert_cache[key] = info
    return info


def name_matches(name, pattern):
    if pattern.startswith("*."):
        return "." in name and name.split(".", 1)[1] == pattern[2:]
    return name == pattern


def expected_der(cfg):
    try:
        with open(cfg["tls_cert"]) as f:
            pem = f.read()
    except OSError:
        return None
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", pem, re.S)
    return ssl.PEM_cert_to_DER_cert(m.group(0)) if m else None


def listeners(host):
    cfg = host.cfg
    out = []
    for p in host.words("smtp_ports"):
        out.append(("smtp", int(p), "exim4"))
    for p in host.words("smtps_ports"):
        out.append(("smtps", int(p), "exim4"))
    for kind, key in (("imaps", "imaps_port"), ("pop3s", "pop3s_port"), ("sieve", "sieve_port")):
        if cfg[key] not in ("", "0"):
            out.append((kind, int(cfg[key]), "dovecot"))
    if cfg["https_port"] not in ("", "0"):
        out.append(("https", int(cfg["https_port"]), "apache2"))
    return out


def check_listener(host, kind, port, daemon):
    """Service line and TLS line of one listener."""
    cfg = host.cfg
    name = f"{kind}/{port}"
    fix_down = f"start it: /etc/init.d/{daemon} start (its log says why it stopped)"
    try:
        greeting, der, chain_error = probe_listener(host, kind, port)
    except (OSError, ssl.SSLError) as ex:
        return [Result(f"service {name}", ERR, f"{daemon} does not answer on "
                       f"{cfg['address']}:{port}: {ex}", fix_down,
                       [("homemail_service_up", {"listener": name}, 0)])]
    host.served_certs[port] = der
    res = [Result(f"service {name}", OK, f"{daemon} answers: {greeting[:60]}",
                  metrics=[("homemail_service_up", {"listener": name}, 1)])]
    info = cert_info(der)
    want = expected_der(cfg)
    problems, verdict, fix = [], OK, ""
    if want is not None and want != der:
        verdict, fix = ERR, (f"{daemon} serves another certificate than {cfg['tls_cert']}: "
                             f"point it there and restart it")
        problems.append(f"not {cfg['tls_cert']} (serves {info['subject']})")
    days = None
    metrics = []
    if info["not_after"] is not None:
        left = info["not_after"] - time.time()
        days = left / 86400
        metrics.append(("homemail_tls_cert_expiry_seconds", {"listener": name}, int(left)))
        if days < int(cfg["tls_error_days"]):
            verdict = ERR
            fix = fix or "renew the certificate (certbot renew) and restart exim4, dovecot, apache2"
            problems.append(f"expires in {days:.1f} days" if left > 0 else "EXPIRED")
        elif days < int(cfg["tls_warn_days"]):
            verdict = max(verdict, WARN)
            fix = fix or "renew the certificate soon (certbot renew)"
            problems.append(f"expires in {days:.0f} days")
    if chain_error:
        verdict = ERR
        fix = fix or ("serve the full chain (certificate then intermediates) "
                      + ("or set tls_ca in status.conf" if not cfg["tls_ca"] else ""))
        problems.append(f"chain does not verify: {chain_error}")
    hn = host.hostname()
    if not any(name_matches(hn, p) for p in info["names"]):
        verdict = ERR
        fix = fix or f"get a certificate naming {hn}"
        problems.append(f"does not name {hn} (names: {' '.join(info['names']) or 'none'})")
    detail = "; ".join(problems) if problems else (
        f"expected certificate, {days:.0f} days left, chain ok, names {hn}")
    res.append(Result(f"tls {name}", verdict, detail, fix, metrics))
    return res


def ask_socket(family, target, hello, nbytes, expect):
    """Connect to target (a socket path or (address, port)) within TIMEOUT,
    send hello (when not empty) and read one answer of at most nbytes;
    raises OSError unless it starts with expect."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        s.connect(target)
        if hello:
            s.sendall(hello)
        data = s.recv(nbytes)
    if not data.startswith(expect):
        raise OSError(f"answered {data[:40]!r}")


def check_auth_sockets(host):
    out = []
    for path in host.words("auth_sockets"):
        name = f"auth socket {os.path.basename(path)}"
        master = "master" in os.path.basename(path) or "userdb" in os.path.basename(path)
        try:
            ask_socket(socket.AF_UNIX, path, b"VERSION\t1\t1\n" if master else b"", 512,
                       b"VERSION\t1\t")
            out.append(Result(name, OK, f"{path} answers"))
        except OSError as ex:
            out.append(Result(name, ERR, f"{path}: {ex.strerror or ex}",
                              "start dovecot (/etc/init.d/dovecot start); exim's AUTH and "
                              "recipient check need this socket"))
    return out


def check_bind(host):
    server = host.cfg["dns_server"]
    if not server:
        return [Result("service dns", SKIP, "no local bind9 configured (dns_server)")]
    dom = host.domains()[0]
    rc, out, err = run(["dig", "+short", "+tries=1", "+time=3", f"@{server}", dom, "SOA"])
    if rc == 0 and out.strip():
        return [Result("service dns", OK, f"bind9 at {server} serves {dom}")]
    return [Result("service dns", ERR, f"bind9 at {server} does not serve {dom}: "
                   f"{(err or out).strip()[:80] or 'no answer'}",
                   "start it (/etc/init.d/named start); named-checkconf -z says why it fails")]


def check_filters(host):
    cfg, out = host.cfg, []
    rs = cfg["rspamd"]
    if rs == "auto":             # configured: Exim's spam condition asks rspamd
        sa = host.exim_option("spamd_address") or ""
        f = sa.split()
        rs = f"{f[0]}:{f[1]}" if "variant=rspamd" in sa and len(f) >= 2 else "no"
    if rs != "no":
        h, _, p = rs.rpartition(":")
        try:
            with socket.create_connection((h, int(p)), timeout=TIMEOUT) as s:
                s.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
                data = s.recv(1024)
            if b"pong" not in data:
                raise OSError(f"answered {data[:40]!r}")
            out.append(Result("service rspamd", OK, f"rspamd answers on {rs}"))
        except (OSError, ValueError) as ex:
            out.append(Result("service rspamd", ERR, f"rspamd on {rs}: {ex}",
                              "start it: /etc/init.d/rspamd start"))
    cd = cfg["clamd"]
    if cd == "auto":             # configured: Exim's malware condition asks clamd
        av = host.exim_option("av_scanner") or ""
        cd = av[len("clamd:"):].split(":")[0].strip() if av.startswith("clamd:") else "no"
    if cd != "no":
        try:
            if cd.startswith("/"):
                family, target = socket.AF_UNIX, cd
            else:                # "ADDRESS PORT"
                a, _, p = cd.replace(":", " ").rpartition(" ")
                family = socket.AF_INET6 if ":" in a.strip() else socket.AF_INET
                target = (a.strip(), int(p))
            ask_socket(family, target, b"PING\n", 64, b"PONG")
            out.append(Result("service clamd", OK, f"clamd answers on {cd}"))
        except (OSError, ValueError) as ex:
            out.append(Result("service clamd", ERR, f"clamd on {cd}: {ex.strerror or ex}",
                              "start it: /etc/init.d/clamav-daemon start (it needs its "
                              "signature database)"))
    return out


# ---------------------------------------------------------------------------
# DNS: the zone the host publishes vs what the daemons' resolver answers
RESOLVER = []        # ["@ADDRESS"] when status.conf names a resolver


def dig(name, rtype):
    """Answer set from the mail daemons' resolver (/etc/resolv.conf's unless
    status.conf says otherwise); None on failure."""
    rc, out, _ = run(["dig", "+short", "+tries=2", "+time=2"] + RESOLVER + [name, rtype],
                     timeout=15)
    if rc != 0:
        return None
    lines = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith(";")]
    if rtype in ("A", "AAAA"):      # +short lists a CNAME chain before the addresses
        lines = [ln for ln in lines if not ln.endswith(".")]
    return {normalise(rtype, ln) for ln in lines}


def normalise(rtype, rdata):
    rdata = rdata.strip()
    if rtype == "TXT":
        return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', rdata)) or rdata
    if rtype == "TLSA":
        f = rdata.split()
        return " ".join(f[:3] + ["".join(f[3:]).upper()])
    if rtype in ("MX", "CNAME", "PTR", "NS"):
        return rdata.lower()
    return rdata


def zone_records(host):
    """{(name, type): set(rdata)} of the zone files the host should publish."""
    cfg, files = host.cfg, []
    if cfg["zone_files"] == "auto":
        for d in host.domains():
            p = f"/etc/bind/db.{d}"
            if os.path.exists(p):
                files.append((d, p))
    elif cfg["zone_files"] not in ("", "no"):
        for item in cfg["zone_files"].split():
            origin, _, path = item.partition("=")
            files.append((origin, path))
    recs, errors = {}, []
    for origin, path in files:
        rc, out, err = run(["named-compilezone", "-q", "-i", "none", "-s", "full", "-o", "-",
                            origin, path], timeout=20)
        if rc != 0:
            errors.append(f"{path}: {(err or out).strip()[:100]}")
            continue
        for line in out.splitlines():
            f = line.split(None, 4)
            if len(f) < 5 or f[2] != "IN":
                continue
            name, rtype, rdata = f[0].lower().rstrip("."), f[3], f[4]
            if rtype in ("SOA", "NS", "RRSIG", "NSEC", "DNSKEY"):
                continue
            recs.setdefault((name, rtype), set()).add(normalise(rtype, rdata))
    return recs, errors


def check_dns(host):
    out = []
    zone, errors = zone_records(host)
    for e in errors:
        out.append(Result("dns zone", ERR, f"zone file does not load: {e}",
                          "named-checkzone says where; fix the file and reload bind9"))
    # 1. every record of the zone as the resolver sees it
    for (name, rtype), want in sorted(zone.items()):
        if rtype not in ("MX", "A", "AAAA", "TXT", "TLSA", "CNAME", "PTR"):
            continue
        got = dig(name, rtype)
        label = f"dns {rtype} {name}"
        if got is None:
            out.append(Result(label, ERR, "the resolver does not answer",
                              "check /etc/resolv.conf and the resolver it names"))
        elif not got:
            out.append(Result(label, ERR, f"published in the zone ({'; '.join(sorted(want))[:70]}) "
                              "but the resolver answers nothing",
                              "reload bind9 (rndc reload) and check the delegation"))
        elif got != want:
            out.append(Result(label, WARN, f"resolver answers {'; '.join(sorted(got))[:60]}, "
                              f"zone says {'; '.join(sorted(want))[:60]}",
                              "reload bind9 (rndc reload), or wait for the TTL"))
        else:
            out.append(Result(label, OK, "; ".join(sorted(got))[:90]))
    # 2. what a receiving MTA checks, whatever the zone file says
    hn = host.hostname()
    for d in host.domains():
        mx = dig(d, "MX")
        if not mx:
            out.append(Result(f"dns mail route {d}", ERR, f"{d} has no MX record",
                              f"publish '{d}. IN MX 10 {hn}.' and reload bind9"))
            continue
        targets = {m.split()[-1].rstrip(".") for m in mx if len(m.split()) == 2}
        if hn not in targets:
            out.append(Result(f"dns MX target {d}", WARN,
                              f"MX names {' '.join(sorted(targets))}, not this host ({hn})",
                              "fine for a backup MX; else point the MX here"))
    addrs = (dig(hn, "A") or set()) | (dig(hn, "AAAA") or set())
    if not addrs:
        out.append(Result(f"dns address {hn}", ERR, f"{hn} has no A/AAAA record",
                          f"publish '{hn}. IN A <address>'"))
    for a in sorted(addrs):
        try:
            rev = ipaddr_reverse(a)
        except ValueError:
            continue
        ptr = dig(rev, "PTR")
        names = {p.rstrip(".") for p in ptr or ()}
        if not names:
            out.append(Result(f"dns PTR {a}", ERR, f"no PTR record for {a} (HELO is {hn})",
                              f"publish '{rev}. IN PTR {hn}.' (your provider does it for "
                              "public addresses)"))
        elif hn not in names:
            out.append(Result(f"dns PTR {a}", ERR, f"PTR of {a} is {' '.join(sorted(names))}, "
                              f"HELO is {hn}", f"set the PTR of {a} to {hn}"))
        else:
            out.append(Result(f"dns PTR {a}", OK, f"{a} -> {hn} = HELO name"))
    for d in host.domains():
        out += check_mail_auth_records(host, d, zone)
    out += check_tlsa(host)
    return out


def ipaddr_reverse(a):
    import ipaddress
    return ipaddress.ip_address(a).reverse_pointer


def exim_list(value):
    """The items of an Exim list ("a : b", or "<; a ; b" with its own
    separator); none when it is an expansion ($...), which only Exim can say."""
    value = value.strip()
    if "$" in value:
        return []
    sep = ":"
    if value.startswith("<") and len(value) > 1 and not value[1].isspace():
        sep, value = value[1], value[2:]
    return [x.strip() for x in value.split(sep) if x.strip()]


def check_mail_auth_records(host, d, zone):
    """SPF, DKIM (current and next selector), DMARC, MTA-STS, TLS-RPT: only
    those that are published or configured."""
    out = []
    txt = dig(d, "TXT") or set()
    spf = [t for t in txt if t.lower().startswith("v=spf1")]
    if len(spf) > 1:
        out.append(Result(f"dns SPF {d}", ERR, f"{len(spf)} SPF records (a permerror for "
                          "every receiver)", "merge them into one TXT record"))
    elif spf:
        out.append(Result(f"dns SPF {d}", OK, spf[0][:90]))
    sels = host.cfg["dkim_selectors"].split()
    if sels == ["auto"]:
        sels = exim_list(host.exim_option("HOMEMAIL_DKIM_SELECTORS")
                         or host.exim_option("DKIM_SELECTOR") or "")
    for sel in sels:
        name = f"{sel}._domainkey.{d}"
        t = " ".join(dig(name, "TXT") or ())
        m = re.search(r"(?:^|;)\s*p=([A-Za-z0-9+/=]+)", t)
        if m:
            out.append(Result(f"dns DKIM {sel}", OK, f"{name} publishes a key"))
        else:
            out.append(Result(f"dns DKIM {sel}", ERR, f"{name} has no DKIM key",
                              f"publish the selector's public key at {name} (TXT)"))
    for label, name, prefix, fix in (
            ("DMARC", f"_dmarc.{d}", "v=dmarc1", "one TXT record starting v=DMARC1"),
            ("MTA-STS", f"_mta-sts.{d}", "v=stsv1", "one TXT record 'v=STSv1; id=...'"),
            ("TLS-RPT", f"_smtp._tls.{d}", "v=tlsrptv1", "one TXT record 'v=TLSRPTv1; rua=...'")):
        t = dig(name, "TXT") or set()
        good = [x for x in t if x.lower().replace(" ", "").startswith(prefix)]
        if not t and (name, "TXT") not in zone:
            continue
        if len(good) == 1:
            out.append(Result(f"dns {label} {d}", OK, good[0][:90]))
            if label == "MTA-STS" and host.cfg["mta_sts_port"] not in ("", "0"):
                out.append(check_mta_sts_policy(host, d))
        else:
            out.append(Result(f"dns {label} {d}", ERR, f"{name}: {len(good)} valid records "
                              f"({'; '.join(sorted(t))[:60]})", fix))
    return out


# RFC 8461: the policy a sending MTA fetches once it sees _mta-sts.<domain>
MTA_STS_MAX_BODY = 64 * 1024       # 3.3: senders may refuse larger policies
MTA_STS_MAX_AGE = 31557600         # 3.2: max_age is at most a year
MTA_STS_MIN_AGE = 86400            # below a day the policy protects little (3.2 advises weeks)


def fetch_mta_sts(host, d):
    """GET https://mta-sts.<d>/.well-known/mta-sts.txt as a sending MTA would:
    the name resolved by the mail daemons' resolver, TLS verified against
    tls_ca (or the system's CAs), no redirects followed (RFC 8461 3.3).
    Returns (status, content type, body, der, chain_error); OSError,
    ssl.SSLError, http.client.HTTPException when it cannot be fetched."""
    name = f"mta-sts.{d}"
    addrs = sorted(dig(name, "A") or ()) + sorted(dig(name, "AAAA") or ())
    if not addrs:
        raise OSError(f"{name} has no address (A/AAAA) at the resolver")
    port = int(host.cfg["mta_sts_port"])
    chain_error, last = None, None
    for verify in (True, False):
        ctx = tls_context(host.cfg, verify)
        try:
            raw = socket.create_connection((addrs[0], port), timeout=TIMEOUT)
        except OSError as ex:
            raise OSError(f"{name} ({addrs[0]}:{port}): {ex.strerror or ex}") from None
        try:
            s = ctx.wrap_socket(raw, server_hostname=name)
        except ssl.SSLCertVerificationError as ex:
            raw.close()
            chain_error = last = ex.verify_message or str(ex)
            continue
        conn = http.client.HTTPSConnection(name, port, timeout=TIMEOUT, context=ctx)
        conn.sock = s                       # already connected to the resolved address
        try:
            s.settimeout(TIMEOUT)
            der = s.getpeercert(binary_form=True)
            conn.request("GET", "/.well-known/mta-sts.txt",
                         headers={"User-Agent": f"{PROG}/{VERSION}", "Connection": "close"})
            r = conn.getresponse()
            body = r.read(MTA_STS_MAX_BODY + 1)
            return r.status, r.getheader("Content-Type", ""), body, der, chain_error
        finally:
            conn.close()
    raise OSError(f"no TLS handshake with {name}: {last}")


def parse_mta_sts(text):
    """{key: [values]} of an RFC 8461 3.2 policy (key ":" value per line,
    CRLF or LF); None when a line is not key: value."""
    fields = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_]+", key.strip()):
            return None
        fields.setdefault(key.strip().lower(), []).append(value.strip())
    return fields


def check_mta_sts_policy(host, d):
    """The policy of d fetched over HTTPS (fetch_mta_sts) and checked:
    version STSv1, a mode, max_age, mx patterns covering every MX record,
    and a certificate valid for mta-sts.<d>."""
    label, name = f"mta-sts policy {d}", f"mta-sts.{d}"
    url = f"https://{name}/.well-known/mta-sts.txt"
    try:
        status, ctype, body, der, chain_error = fetch_mta_sts(host, d)
    except (OSError, ssl.SSLError, http.client.HTTPException) as ex:
        return Result(label, ERR, f"cannot fetch {url}: {ex}"[:200],
                      f"serve the policy at {url} (and an A record for {name})")
    problems, verdict, fix = [], OK, ""

    def bad(v, what, how):
        nonlocal verdict, fix
        problems.append(what)
        verdict = max(verdict, v)
        fix = fix or how
    if chain_error:
        bad(ERR, f"certificate does not verify: {chain_error}",
            f"serve a certificate for {name} from a CA senders trust (the full chain)")
    names = cert_info(der)["names"]
    if not any(name_matches(name, p) for p in names):
        bad(ERR, f"certificate does not name {name} (names: {' '.join(names) or 'none'})",
            f"add {name} to the certificate's names")
    if status != 200:
        return Result(label, ERR, f"{url}: HTTP {status}" + (f"; {'; '.join(problems)}"
                      if problems else ""), f"serve the policy file at {url} (no redirect)")
    if len(body) > MTA_STS_MAX_BODY:
        return Result(label, ERR, f"{url}: larger than 64 KiB", "serve the policy file only")
    if ctype.split(";")[0].strip().lower() != "text/plain":
        bad(WARN, f"served as {ctype or 'no type'}, not text/plain",
            "serve it as text/plain (RFC 8461 3.3)")
    try:
        fields = parse_mta_sts(body.decode("utf-8"))
    except UnicodeDecodeError:
        fields = None
    if fields is None:
        return Result(label, ERR, f"{url}: not a policy (key: value lines)",
                      "serve the policy file, version: STSv1 ...")
    version = fields.get("version", [""])[0]
    mode = fields.get("mode", [""])[0].lower()
    age = fields.get("max_age", [""])[0]
    patterns = [p.rstrip(".").lower() for p in fields.get("mx", [])]
    if version != "STSv1":
        bad(ERR, f"version {version or 'missing'}, not STSv1",
            "the policy's first line must be 'version: STSv1'")
    if mode not in ("enforce", "testing", "none"):
        bad(ERR, f"mode {mode or 'missing'}", "mode: testing (or enforce) in the policy")
    if not age.isdigit() or int(age) > MTA_STS_MAX_AGE:
        bad(ERR, f"max_age {age or 'missing'}", "max_age: 604800 (a week) in the policy")
    elif int(age) < MTA_STS_MIN_AGE:
        bad(WARN, f"max_age {age} s is under a day",
            "max_age: 604800 or more (RFC 8461 advises weeks)")
    mx = dig(d, "MX")
    hosts = sorted({m.split()[-1].rstrip(".") for m in mx or () if len(m.split()) == 2})
    if mode in ("enforce", "testing"):
        if not patterns:
            bad(ERR, "no mx line", f"list every MX host: mx: {host.hostname()}")
        uncovered = [h for h in hosts if not any(name_matches(h, p) for p in patterns)]
        if uncovered:
            # enforce: senders that honour the policy refuse to deliver there
            bad(ERR if mode == "enforce" else WARN,
                f"MX {' '.join(uncovered)} not in the policy's mx ({' '.join(patterns) or 'none'})",
                f"add 'mx: {uncovered[0]}' to the policy (and change its id in _mta-sts.{d})")
    detail = "; ".join(problems) if problems else (
        f"{version} mode {mode}, max_age {age}, mx {' '.join(patterns) or '-'} covers "
        f"{' '.join(hosts) or 'no MX'}; certificate verified for {name}")
    return Result(label, verdict, detail[:300], fix)


def check_tlsa(host):
    """TLSA for port 25 of this host: each published record set must match the
    certificate Exim serves (usage 3/2, selector 0/1, matching 1/2)."""
    hn = host.hostname()
    name = f"_25._tcp.{hn}"
    recs = dig(name, "TLSA")
    if not recs:
        return []
    der = next((host.served_certs[int(p)] for p in host.words("smtp_ports")
                if int(p) in host.served_certs), None)
    if der is None:
        return [Result(f"dns TLSA {name}", ERR, "published, but no certificate was read "
                       "from the SMTP listener to compare", "see the service lines above")]
    spki = cert_info(der)["spki"]
    matched = []
    for r in recs:
        f = r.split()
        if len(f) != 4:
            continue
        sel = der if f[1] == "0" else spki
        digest = {"0": sel.hex(), "1": hashlib.sha256(sel).hexdigest(),
                  "2": hashlib.sha512(sel).hexdigest()}.get(f[2], "")
        if digest.upper() == f[3].upper():
            matched.append(r[:20])
    if matched:
        return [Result(f"dns TLSA {name}", OK, f"{len(matched)} of {len(recs)} records match "
                       "the certificate on port 25")]
    return [Result(f"dns TLSA {name}", ERR, "no TLSA record matches the certificate Exim "
                   "serves: DANE senders will refuse to deliver",
                   "publish the new key's TLSA (3 1 1) before switching certificates")]


# ---------------------------------------------------------------------------
# Exim
AGE_RE = re.compile(r"^\s*(\d+)([smhdw])\s+\S+\s+(\S+)")


def exim_log_path(host, which):
    p = host.exim_option("log_file_path")
    if p is None:
        return None
    for part in p.split(":"):
        part = part.strip()
        if part and part != "syslog":
            return part.replace("%s", which)
    if not p.strip():
        return f"/var/log/exim4/{which}log"
    return None


def check_exim(host):
    cfg, out = host.cfg, []
    rc, text, err = run(host.exim_argv("-bp"), timeout=60)
    if rc != 0:
        return [Result("exim queue", ERR, f"exim -bp failed: {(err or text).strip()[:90]}",
                       "is exim4 installed and its configuration valid (exim4 -bV)?")]
    ages, frozen, ids = [], [], []
    for line in text.splitlines():
        m = AGE_RE.match(line)
        if m:
            ages.append(int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400,
                                            "w": 604800}[m.group(2)])
            ids.append(m.group(3))
            if "*** frozen ***" in line:
                frozen.append(m.group(3))
    n, oldest = len(ages), max(ages, default=0)
    metrics = [("homemail_exim_queue_messages", {}, n),
               ("homemail_exim_queue_oldest_seconds", {}, oldest),
               ("homemail_exim_frozen_messages", {}, len(frozen))]
    v = OK
    if n >= int(cfg["queue_error"]) or oldest >= duration(cfg["queue_age_error"]):
        v = ERR
    elif n >= int(cfg["queue_warn"]) or oldest >= duration(cfg["queue_age_warn"]):
        v = WARN
    out.append(Result("exim queue", v, f"{n} messages" + (f", oldest {human_age(oldest)}"
                                                           if n else ""),
                      "" if v == OK else "exiqgrep -o 3600 lists the old ones; the deferral "
                      "reasons below say why they stay", metrics))
    if frozen:
        out.append(Result("exim frozen", WARN, f"{len(frozen)} frozen: {' '.join(frozen[:3])}"
                          + (" ..." if len(frozen) > 3 else ""),
                          f"read why: exim4 -Mvl {frozen[0]}; then exim4 -Mt (thaw) or "
                          "-Mrm (remove)"))
    else:
        out.append(Result("exim frozen", OK, "no frozen message"))
    panic = exim_log_path(host, "panic")
    if panic:
        try:
            size = os.path.getsize(panic)
        except FileNotFoundError:
            size = 0
        except OSError as ex:
            size = None
            out.append(Result("exim paniclog", ERR, f"{panic}: {ex.strerror}"))
        if size:
            with open(panic, errors="replace") as f:
                f.seek(max(0, size - 200))
                last = f.read().strip().splitlines()[-1:] or [""]
            out.append(Result("exim paniclog", ERR, f"{panic} is not empty ({size} bytes): "
                              f"{last[0][:80]}",
                              f"read it, fix the cause, then empty it: : > {panic}"))
        elif size == 0:
            out.append(Result("exim paniclog", OK, f"{panic} empty"))
    out.append(check_deferrals(host))
    out.append(check_local_scan(host))
    return out


# Deferral reasons: the first pattern found in a " == " line wins; None:
# not a deferral worth counting.
DEFER_CLASSES = hm.patterns([
    (None, r"retry time not reached"),
    ("connection refused", r"Connection refused"),
    ("timeout", r"timed out|timeout"),
    ("DNS lookup", r"host lookup did not complete|DNS|lookup"),
    ("recipient over quota", r"quota|mailbox is full|Disk quota"),
    ("greylisted", r"greylist"),
    ("TLS", r"TLS|certificate"),
    ("local delivery deferred", r"returned 75|temporary|EX_TEMPFAIL"),
    ("remote 4xx", r"SMTP error .*: 4\d\d"),
    ("disk space", r"No space|spool"),
])
RETRY_SKIP = re.compile(r"[Rr]etry time not (yet )?reached")
LOG_TAIL = 32 << 20    # bytes of a log read at most: the last hour fits


def log_lines_since(path, since, maxbytes=LOG_TAIL):
    """Lines of an Exim-style log (timestamp 'YYYY-MM-DD HH:MM:SS' first)
    written at or after `since` (epoch); reads at most the last maxbytes."""
    data = hm.read_tail(path, maxbytes)
    if data is None:
        return None
    cut = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
    return [ln for ln in data.splitlines() if ln[:19] >= cut and ln[:2] == "20"]


def check_deferrals(host):
    path = exim_log_path(host, "main")
    lines = log_lines_since(path, time.time() - 3600) if path else None
    if lines is None:
        return Result("exim deferrals 1h", SKIP, f"no main log to read ({path})")
    by = {}
    for ln in lines:
        # a retry skipped because its time has not come is no delivery
        # attempt: counting those made one stuck message look like dozens
        if " == " not in ln or RETRY_SKIP.search(ln):
            continue
        reason = hm.first_match(DEFER_CLASSES, ln, "other")
        if reason is None:
            continue
        by[reason] = by.get(reason, 0) + 1
    n = sum(by.values())
    metrics = [("homemail_exim_deferrals_1h", {"reason": r}, c) for r, c in by.items()]
    metrics.append(("homemail_exim_deferrals_1h_total", {}, n))
    detail = ", ".join(f"{c} {r}" for r, c in sorted(by.items(), key=lambda x: -x[1])) or "none"
    v = WARN if n >= int(host.cfg["deferrals_warn"]) else OK
    return Result("exim deferrals 1h", v, detail,
                  "" if v == OK else f"grep ' == ' {path} | tail", metrics)


PROBE = ("EHLO homemail-status.invalid\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster@{d}>\r\nDATA\r\n"
         "Subject: homemail-status local_scan probe (never accepted)\r\n\r\n"
         "A message without From: that homemail_scan.so refuses.\r\n.\r\nQUIT\r\n")


def check_local_scan(host):
    """local_scan answered: a message without From: run through Exim's
    host-checking mode (-bh: nothing is accepted or delivered) must be
    refused by homemail_scan.so's local_scan(); 451 means the module does
    not load."""
    if host.cfg["local_scan_probe"] != "yes":
        return Result("homemail local_scan", SKIP, "probe off (local_scan_probe)")
    path = host.exim_option("local_scan_path")
    if not path:
        return Result("homemail local_scan", ERR, "Exim has no local_scan_path: "
                      "homemail_scan.so is not in use",
                      "reinstall homemail (apt install --reinstall homemail); "
                      "update-exim4.conf; restart exim4")
    if not os.path.exists(path):
        return Result("homemail local_scan", ERR, f"{path} is missing: Exim answers 451 "
                      "to every message", "apt install --reinstall homemail")
    # HOMEMAIL_MIME_FIRST=no: the DATA ACL leaves the policy to local_scan
    # (with it, the ACL's homemail_mime_verdict would refuse the probe first
    # and local_scan itself would go unproven)
    rc, text, err = run(host.exim_argv("-DHOMEMAIL_MIME_FIRST=no", "-bh", "127.0.0.1"),
                        input=PROBE.format(d=host.domains()[0]), timeout=30)
    replies = [ln for ln in text.splitlines() if re.match(r"^\d{3}[ -]", ln)]
    after_data = replies[replies.index(next(r for r in replies if r.startswith("354"))) + 1:] \
        if any(r.startswith("354") for r in replies) else []
    final = after_data[0] if after_data else (replies[-1] if replies else "no answer")
    if final.startswith("550") and "From:" in final and "rejected by local_scan()" in text + err:
        return Result("homemail local_scan", OK, f"{os.path.basename(path)} answered "
                      "(local_scan() refused the probe as it should)")
    if final.startswith("451") or final.startswith("4"):
        return Result("homemail local_scan", ERR, f"{path} does not work: {final[:80]}",
                      "exim4's mainlog says why; apt install --reinstall homemail")
    return Result("homemail local_scan", ERR, f"the probe was not refused by local_scan "
                  f"({final[:80]})", "check local_scan_path and scan.conf (action_from)")


# ---------------------------------------------------------------------------
# Dovecot
AUTH_FAIL_RE = re.compile(r"auth failed|Authentication failure|authentication failed|"
                          r"Password mismatch|unknown user", re.I)
DOVECOT_TS = re.compile(r"^(\w{3} \d\d \d\d:\d\d:\d\d)|^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)")


def dovecot_log_since(path, since, maxbytes=LOG_TAIL):
    """Dovecot log lines at or after `since` (its own 'Mon DD HH:MM:SS' form
    or ISO); lines without a timestamp belong to the one before."""
    data = hm.read_tail(path, maxbytes)
    if data is None:
        return None
    year = time.localtime().tm_year
    out = []
    for ln in data.splitlines():
        m = DOVECOT_TS.match(ln)
        if not m:
            continue
        try:
            if m.group(1):
                t = time.mktime(time.strptime(f"{year} {m.group(1)}", "%Y %b %d %H:%M:%S"))
                if t > time.time() + 86400:
                    t = time.mktime(time.strptime(f"{year - 1} {m.group(1)}",
                                                  "%Y %b %d %H:%M:%S"))
            else:
                t = time.mktime(time.strptime(m.group(2).replace("T", " "),
                                              "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        if t >= since:
            out.append(ln)
    return out


def check_dovecot(host):
    cfg, out = host.cfg, []
    lines = dovecot_log_since(cfg["dovecot_log"], time.time() - 3600)
    if lines is None:
        out.append(Result("dovecot auth failures 1h", SKIP,
                          f"no log to read ({cfg['dovecot_log']})"))
    else:
        n = sum(1 for ln in lines if AUTH_FAIL_RE.search(ln))
        v = WARN if n >= int(cfg["auth_failures_warn"]) else OK
        out.append(Result("dovecot auth failures 1h", v, f"{n} failed logins",
                          "" if v == OK else "someone is guessing: the lockout holds them; "
                          "see the lockouts line", [("homemail_dovecot_auth_failures_1h", {}, n)]))
    out.append(check_lockouts(host))
    out.append(check_quota(host))
    out += check_homemail_dovecot(host)
    return out


def check_lockouts(host):
    """Active locks in homemail's lockout state (lib/hm_lockout.c, format 2):
    a 64-byte header, then 64-byte records {key[20], u32 failures,
    i64 first, i64 last, i64 locked_until, u32 lock_count, u8 kind}."""
    path = host.cfg["lockout_db"]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return Result("dovecot lockouts", OK, "no lockout state yet (no failed login)",
                      metrics=[("homemail_lockouts_active", {"kind": "user"}, 0)])
    except OSError as ex:
        return Result("dovecot lockouts", ERR, f"{path}: {ex.strerror}")
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH)
        with os.fdopen(os.dup(fd), "rb") as f:
            hdr = f.read(64)
            if hdr[:7] != b"HMLOCK1" or struct.unpack_from("=III", hdr, 8)[0] != 2:
                return Result("dovecot lockouts", WARN, f"{path}: not a format-2 lockout "
                              "file", "homemail's auth module resets it at its next login")
            slots, rec_size = struct.unpack_from("=III", hdr, 8)[1:]
            if rec_size != 64 or slots > (1 << 20):
                return Result("dovecot lockouts", WARN, f"{path}: unexpected layout")
            now = time.time()
            counts = {1: 0, 2: 0, 3: 0}
            for _ in range(slots):
                rec = f.read(64)
                if len(rec) < 64:
                    break
                if rec[:20] == b"\0" * 20:
                    continue
                locked_until, = struct.unpack_from("=q", rec, 40)
                kind = rec[52]
                if locked_until > now and kind in counts:
                    counts[kind] += 1
    finally:
        os.close(fd)
    users, ips, unknown = counts[1], counts[2], counts[3]
    metrics = [("homemail_lockouts_active", {"kind": k}, v)
               for k, v in (("user", users), ("ip", ips), ("unknown", unknown))]
    if users or ips:
        return Result("dovecot lockouts", WARN, f"{users} accounts and {ips} addresses locked "
                      f"out now ({unknown} unknown names)",
                      "dovecot.log names them ('now user locked out'); homemail-user unlock "
                      "NAME (or --ip ADDRESS) if they are legitimate", metrics)
    return Result("dovecot lockouts", OK, f"no account or address locked out ({unknown} "
                  "unknown names)", metrics=metrics)


def check_quota(host):
    limit = int(host.cfg["quota_warn"])
    rc, text, err = run(host.doveadm_argv("-f", "tab", "quota", "get", "-A"), timeout=60)
    if not text.startswith("Username\t"):
        return Result("dovecot quota", ERR, f"doveadm quota get -A: "
                      f"{(err or text).strip()[:90]}", "is dovecot running?")
    # One user's error does not hide the others; an account removed while
    # the list was walked (its home gone) is no error at all.
    unreadable = set()
    for m in re.finditer(r"doveadm\(([^)]+)\): Error: (.*)", err):
        if "No such file or directory" not in m.group(2):
            unreadable.add(m.group(1))
    users, over = hm.quota_users(text, limit)
    metrics = [("homemail_quota_users_over", {}, len(over))]
    if unreadable:
        return Result("dovecot quota", WARN, f"quota unreadable for {' '.join(sorted(unreadable)[:5])}"
                      + (f"; over {limit} %: {', '.join(over[:5])}" if over else ""),
                      "doveadm quota get -u USER shows the error (a broken maildirsize?)",
                      metrics)
    if over:
        return Result("dovecot quota", WARN, f"over {limit} %: {', '.join(over[:5])}"
                      + (" ..." if len(over) > 5 else ""),
                      "ask them to clean up, or raise the quota "
                      "(homemail-user / quota_rule)", metrics)
    return Result("dovecot quota", OK, f"{len(users)} users, none over {limit} %",
                  metrics=metrics)


def check_homemail_dovecot(host):
    cfg, out = host.cfg, []
    if cfg["auth_module"] == "yes":
        rc, text, err = run(host.doveconf_argv("passdb"), timeout=20)
        drivers = re.findall(r"^\s*driver = (\S+)", text, re.M)
        if rc != 0:
            out.append(Result("homemail auth module", ERR, f"doveconf: {err.strip()[:90]}"))
        elif not drivers or drivers[0] != "homemail":
            out.append(Result("homemail auth module", ERR, f"Dovecot's first passdb is "
                              f"{drivers[0] if drivers else 'none'}, not homemail",
                              "apt install --reinstall homemail (ships "
                              "/usr/share/homemail/dovecot/auth-homemail.conf.ext)"))
        else:
            probe = "homemail-status-probe-nobody"
            rc, text, err = run(host.doveadm_argv("user", probe), timeout=20)
            if rc in (0, 67):
                out.append(Result("homemail auth module", OK, "passdb homemail active, "
                                  "userdb answers"))
            else:
                out.append(Result("homemail auth module", ERR, "the userdb does not answer "
                                  f"(doveadm user: exit {rc}: {(err or text).strip()[:60]})",
                                  "dovecot.log shows the auth process's errors"))
    jp = cfg["junk_plugin"]
    so = "/usr/lib/dovecot/modules/lib90_homemail_junk_plugin.so"
    if jp == "auto":
        jp = "yes" if os.path.exists(so) else "no"
    if jp == "yes":
        rc, text, err = run(host.doveconf_argv("-h", "mail_plugins"), timeout=20)
        if "homemail_junk" in text.split():
            out.append(Result("homemail junk plugin", OK, "homemail_junk in mail_plugins"))
        else:
            out.append(Result("homemail junk plugin", ERR, "homemail_junk is not in "
                              f"mail_plugins ({text.strip()[:60]})",
                              "90-homemail.conf includes junk.conf.ext: "
                              "apt install --reinstall homemail"))
    return out


# ---------------------------------------------------------------------------
# disk, backup, package
def check_disk(host):
    cfg, out, seen = host.cfg, [], set()
    warn, err = int(cfg["disk_warn"]), int(cfg["disk_error"])
    for path in host.words("disk_paths"):
        try:
            st = os.stat(path)
            vfs = os.statvfs(path)
        except FileNotFoundError:
            continue
        except OSError as ex:
            out.append(Result(f"disk {path}", ERR, f"{ex.strerror}"))
            continue
        if st.st_dev in seen:
            continue
        seen.add(st.st_dev)
        used = 100.0 * (1 - vfs.f_bavail / vfs.f_blocks) if vfs.f_blocks else 0.0
        iused = 100.0 * (1 - vfs.f_favail / vfs.f_files) if vfs.f_files else 0.0
        worst = max(used, iused)
        v = ERR if worst >= err else WARN if worst >= warn else OK
        free_mb = vfs.f_bavail * vfs.f_frsize // (1 << 20)
        out.append(Result(f"disk {path}", v, f"{used:.0f} % used ({free_mb} MiB free), "
                          f"inodes {iused:.0f} %",
                          "" if v == OK else f"free space on {path} (du -xsh {path}/* | sort -h); "
                          "Exim stops accepting mail when its spool fills",
                          [("homemail_disk_used_ratio", {"path": path}, round(used / 100, 4)),
                           ("homemail_inodes_used_ratio", {"path": path}, round(iused / 100, 4))]))
    return out


def parse_time(v):
    if isinstance(v, (int, float)):
        return float(v)
    return datetime.datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()


def check_backup(host):
    """The state file homemail-backup writes after each run (docs/operations.md,
    "State file"): {"time": epoch (or ISO 8601), "result": "ok" | "error",
    "size": bytes, "message": what failed or what was archived}."""
    cfg = host.cfg
    path = cfg["backup_state"]
    req = cfg["backup_required"]
    if req == "auto":
        req = "yes" if os.path.exists("/usr/sbin/homemail-backup") else "no"
    try:
        with open(path) as f:
            st = json.load(f)
        t = parse_time(st["time"])
        result = str(st.get("result", ""))
        size = st.get("size")
        message = str(st.get("message", "")) or result
    except FileNotFoundError:
        if req == "yes":
            return [Result("backup", WARN, f"no backup has run yet ({path} missing)",
                           "run homemail-backup once; check its cron job")]
        return [Result("backup", SKIP, "no backup configured")]
    except (OSError, ValueError, KeyError, TypeError) as ex:
        return [Result("backup", ERR, f"{path}: unreadable state ({ex})",
                       "run homemail-backup again")]
    age = time.time() - t
    metrics = [("homemail_backup_age_seconds", {}, int(age)),
               ("homemail_backup_ok", {}, 1 if result == "ok" else 0)]
    if isinstance(size, int):
        metrics.append(("homemail_backup_size_bytes", {}, size))
    sz = f", {size / (1 << 20):.1f} MiB" if isinstance(size, int) else ""
    if result != "ok":
        return [Result("backup", ERR, f"last backup {human_age(age)} ago failed: {message[:80]}",
                       "run homemail-backup by hand and read its error", metrics)]
    if age >= duration(cfg["backup_error_age"]):
        v = ERR
    elif age >= duration(cfg["backup_warn_age"]):
        v = WARN
    else:
        v = OK
    return [Result("backup", v, f"last backup {human_age(age)} ago, ok{sz}",
                   "" if v == OK else "the daily backup did not run: check cron and "
                   "homemail-backup's log", metrics)]


def package_version():
    rc, out, _ = run(["dpkg-query", "-W", "-f", "${Status}\t${Version}", "homemail"], timeout=20)
    if rc != 0 or "installed" not in out.split("\t")[0].split()[-1:]:
        return None
    return out.split("\t")[1]


def check_versions(host):
    out = []
    pkg = package_version()
    want = pkg or VERSION
    bad, seen = [], 0
    for prog in host.words("programs"):
        if not os.path.exists(prog):
            bad.append(f"{os.path.basename(prog)} missing")
            continue
        rc, text, _ = run([prog, "--version"], timeout=10)
        seen += 1
        got = text.strip().split()[-1] if rc == 0 and text.strip() else "?"
        if got != want:
            bad.append(f"{os.path.basename(prog)} {got}")
    if bad:
        out.append(Result("homemail versions", ERR, f"expected {want}: {', '.join(bad)}",
                          "apt install --reinstall homemail"))
    else:
        out.append(Result("homemail versions", OK, f"{seen} programs at {want}"
                          + ("" if pkg else " (package not installed; the tool's version)")))
    if host.cfg["package_files"] == "yes" and pkg:
        rc, text, err = run(["dpkg", "--verify", "homemail"], timeout=60)
        changed = [ln.split()[-1] for ln in text.splitlines()
                   if ln[:3].find("5") >= 0 and " c " not in ln]
        if changed:
            out.append(Result("homemail package files", ERR, f"differ from the package: "
                              f"{' '.join(changed[:4])}", "apt install --reinstall homemail"))
        else:
            out.append(Result("homemail package files", OK, f"homemail {pkg}: installed files "
                              "match the package"))
    return out


# ---------------------------------------------------------------------------
def run_checks(host):
    """Every check, the independent ones in parallel; results in a fixed order."""
    groups = [
        ("listeners", lambda: sum((check_listener(host, *ls) for ls in listeners(host)), [])),
        ("auth", lambda: check_auth_sockets(host)),
        ("bind", lambda: check_bind(host)),
        ("filters", lambda: check_filters(host)),
        ("exim", lambda: check_exim(host)),
        ("dovecot", lambda: check_dovecot(host)),
        ("disk", lambda: check_disk(host)),
        ("backup", lambda: check_backup(host)),
        ("versions", lambda: check_versions(host)),
    ]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futs = {name: pool.submit(fn) for name, fn in groups}
        for name, fut in futs.items():
            results[name] = guarded(name, fut.result)
    # DNS after the listeners: TLSA compares the certificate port 25 served
    results["dns"] = guarded("dns", lambda: check_dns(host))
    order = ["listeners", "auth", "bind", "filters", "dns", "exim", "dovecot", "disk",
             "backup", "versions"]
    return [r for name in order for r in results[name]]


def guarded(name, fn):
    try:
        return fn()
    except Exception as ex:          # a broken check is an error line, never a crash
        return [Result(f"{name} (check failed)", ERR, f"{type(ex).__name__}: {ex}",
                       "report this as a homemail-status bug")]


def worst(results):
    return max((r.verdict for r in results), default=OK)


def table(results, colour):
    width = max((len(r.check) for r in results), default=10)
    lines = []
    for r in results:
        v = NAMES[r.verdict]
        if colour:
            v = f"{COLOURS[r.verdict]}{v:<7}\033[0m"
        else:
            v = f"{v:<7}"
        lines.append(f"{v} {r.check:<{width}}  {r.detail}")
        if r.fix and r.verdict in (WARN, ERR):
            lines.append(f"{'':7} {'':<{width}}  fix: {r.fix}")
    return "\n".join(lines) + "\n"


def summary(results):
    c = {v: sum(1 for r in results if r.verdict == v) for v in (OK, WARN, ERR)}
    return f"{c[OK]} ok, {c[WARN]} warning, {c[ERR]} error"


def prom_escape(v):
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(results, elapsed):
    lines = ["# HELP homemail_status_check verdict of one check: 0 ok, 1 warning, 2 error",
             "# TYPE homemail_status_check gauge"]
    for r in results:
        if r.verdict != SKIP:
            lines.append(f'homemail_status_check{{check="{prom_escape(r.check)}"}} {r.verdict}')
    lines += ["# HELP homemail_status_worst worst verdict of the run",
              "# TYPE homemail_status_worst gauge", f"homemail_status_worst {worst(results)}",
              "# TYPE homemail_status_run_seconds gauge",
              f"homemail_status_run_seconds {elapsed:.3f}",
              "# TYPE homemail_status_last_run_timestamp_seconds gauge",
              f"homemail_status_last_run_timestamp_seconds {int(time.time())}"]
    seen = set()
    for r in results:
        for name, labels, value in r.metrics:
            if name not in seen:
                lines.append(f"# TYPE {name} gauge")
                seen.add(name)
            lab = ",".join(f'{k}="{prom_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")
    return "\n".join(lines) + "\n"


def mail_postmaster(cfg, host, results):
    body = (f"homemail-status on {host.hostname()}: {summary(results)}\n\n"
            + table([r for r in results if r.verdict in (WARN, ERR)], False)
            + "\nAll checks:\n\n" + table(results, False))
    msg = hm.mail_text(cfg["postmaster"], f"homemail-status {host.hostname()}: "
                       f"{NAMES[worst(results)]} ({summary(results)})", body)
    rc, out, err = run([cfg["sendmail"], "-t", "-oi"], input=msg, timeout=60)
    if rc != 0:
        sys.stderr.write(f"{PROG}: {cfg['sendmail']} failed ({rc}): {err.strip()}\n"
                         + table(results, False))


def main(argv):
    rc, opts = hm.command_line(
        argv, PROG, VERSION, USAGE,
        {"config": None, "json": False, "prometheus": None, "cron": False, "colour": True},
        values=("--config", "--prometheus"),
        flags={"--json": ("json", True), "--cron": ("cron", True),
               "--no-color": ("colour", False)})
    if rc is not None:
        return rc
    path = opts["config"] or "/etc/homemail/status.conf"
    try:
        cfg = hm.read_config(path, DEFAULTS, must_exist=opts["config"] is not None)
        for k in ("backup_warn_age", "backup_error_age", "queue_age_warn", "queue_age_error"):
            duration(cfg[k])
    except hm.ConfigError as ex:
        sys.stderr.write(f"{PROG}: {ex}\n")
        return hm.EX_CONFIG
    t0 = time.monotonic()
    if cfg["resolver"]:
        RESOLVER[:] = [f"@{cfg['resolver']}"]
    host = Host(cfg)
    results = run_checks(host)
    elapsed = time.monotonic() - t0
    w = worst(results)
    if opts["prometheus"]:
        try:
            hm.write_atomic(opts["prometheus"], prometheus(results, elapsed))
        except OSError as ex:
            sys.stderr.write(f"{PROG}: {opts['prometheus']}: {ex.strerror}\n")
            w = max(w, ERR)
    if opts["cron"]:
        if w != OK:
            mail_postmaster(cfg, host, results)
        return w
    if opts["json"]:
        json.dump({"host": host.hostname(), "time": int(time.time()), "version": VERSION,
                   "verdict": NAMES[w], "seconds": round(elapsed, 3),
                   "checks": [r.as_dict() for r in results]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return w
    colour = (opts["colour"] and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    sys.stdout.write(table(results, colour))
    sys.stdout.write(f"{host.hostname()}: {summary(results)} in {elapsed:.1f} s\n")
    return w


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
