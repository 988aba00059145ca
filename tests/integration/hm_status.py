"""hm_status.py — a small live mail host for homemail-status and homemail-report.

StatusHost starts what homemail-status looks at, all private (hmtest):
  * a PackageDovecot with homemail's auth backend, its IMAPS/POP3S
    listeners TLS-on-connect as Debian's 10-master.conf has them;
  * a PackageExim on two ports (STARTTLS and TLS-on-connect, as 25 and
    465) loading a copy of homemail_scan.so this module owns, so a test can
    take the module away;
  * a certificate of a private CA (90 days; the test can swap in one that
    expires sooner, same key) served by both;
  * a World DNS server with the zone the host publishes (MX, A, SPF, DKIM
    current+next, DMARC, MTA-STS, TLS-RPT, TLSA of the certificate) and the
    reverse zone for the PTR, plus a copy of the zone as "what the host should
    publish" (status.conf zone_files), so a test can change what is served;
  * the MTA-STS policy over HTTPS (RFC 8461): mta-sts.<domain> resolving to
    127.0.0.1 and a small HTTPS server (Python's http.server, TLS with a
    certificate of the same CA for that name) on a free port serving
    /.well-known/mta-sts.txt; a test can rewrite the policy or serve a
    certificate without the name;
  * a small tmpfs as the mail spool (disk_paths), a backup state file;
and writes status.conf pointing homemail-status at all of it.
"""
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time

import hm_world
import hmtest

DOMAIN = hmtest.MAIL_DOMAIN
HOSTNAME = "mail.home.com.bo"
ADDR = "192.0.2.25"                  # the A record (TEST-NET-1); reverse zone 2.0.192.in-addr.arpa
REV_ZONE = "2.0.192.in-addr.arpa"
DKIM_SELECTORS = ("s2026", "s2027")


def _openssl(*args, input=None):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, input=input)


class StatusHost:
    def __init__(self):
        self.w = hmtest._workdir("status")
        self._make_ca_and_cert()
        self._start_mta_sts()
        self.world = hm_world.World()
        self.zone = self._zone_records()
        self.world.start_dns({DOMAIN: self.zone, REV_ZONE: [f"25 IN PTR {HOSTNAME}."]})
        self.expected_zone = os.path.join(self.w, f"db.{DOMAIN}")
        with open(self.expected_zone, "w") as f:
            f.write(hm_world.zone_text(DOMAIN, self.zone, self.world.dns_addr, 1))
        # the mail spool: a 1 MiB tmpfs (disk full is a dd away)
        self.spool = hmtest._mkdir(os.path.join(self.w, "spool"), 0o755)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=512", "hmstatus",
                        self.spool], check=True)
        hmtest._cleanups.insert(0, lambda: subprocess.run(["umount", "-l", self.spool],
                                                          capture_output=True))
        self.scan_dir = hmtest._mkdir(os.path.join(self.w, "scan"), 0o755)
        self.scan_so = os.path.join(self.scan_dir, "homemail_scan.so")
        shutil.copyfile(os.path.join(hmtest.BUILD, "homemail_scan.so"), self.scan_so)
        os.chmod(self.scan_so, 0o644)
        self.dv = _TLSDovecot(self, users=()).start()
        # the selectors as the playbook gives them to Exim (an Exim list);
        # homemail-status reads them from there ("auto")
        self.ex = hmtest.PackageExim(
            dovecot=self.dv, macros="HOMEMAIL_DKIM_SELECTORS = " + " : ".join(DKIM_SELECTORS))
        self.smtps_port = hmtest.free_port()
        self._retarget_exim()
        self.ex.start()
        self.backup_state = os.path.join(self.w, "backup-last.json")
        self.write_backup(time.time() - 3600, "ok", 123456789)
        self.conf = os.path.join(self.w, "status.conf")
        self.write_conf()

    # -- pieces ----------------------------------------------------------------
    def _make_ca_and_cert(self):
        d = self.w
        self.ca = os.path.join(d, "ca.pem")
        self.cert = os.path.join(d, "cert.pem")
        self.key = os.path.join(d, "key.pem")
        cakey = os.path.join(d, "ca.key")
        _openssl("req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "30",
                 "-subj", "/CN=homemail test CA", "-keyout", cakey, "-out", self.ca)
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                 "-out", self.key)
        self.csr = os.path.join(d, "cert.csr")
        _openssl("req", "-new", "-key", self.key, "-subj", f"/CN={HOSTNAME}", "-out", self.csr)
        self._cakey = cakey
        self.issue_cert(90)
        for p in (self.ca, self.cert, self.key):
            os.chmod(p, 0o644)    # test only: Debian-exim and dovecot read them

    def issue_cert(self, days):
        """(Re)write cert.pem: the same key, valid for `days` from now."""
        ext = os.path.join(self.w, "san.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{HOSTNAME},DNS:localhost,IP:127.0.0.1\n")
        tmp = self.cert + ".new"
        _openssl("x509", "-req", "-in", self.csr, "-CA", self.ca, "-CAkey", self._cakey,
                 "-CAcreateserial", "-days", str(days), "-extfile", ext, "-out", tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.cert)

    # -- the MTA-STS policy host ------------------------------------------------
    GOOD_POLICY = f"version: STSv1\r\nmode: testing\r\nmx: {HOSTNAME}\r\nmax_age: 604800\r\n"

    def _leaf(self, tag, names):
        """A certificate of the CA for names (and its key): (cert, key)."""
        crt, key = (os.path.join(self.w, f"{tag}.pem"), os.path.join(self.w, f"{tag}.key"))
        csr, ext = crt + ".csr", crt + ".ext"
        _openssl("req", "-new", "-nodes", "-newkey", "rsa:2048", "-subj", f"/CN={names[0]}",
                 "-keyout", key, "-out", csr)
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n")
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self._cakey,
                 "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", crt)
        return crt, key

    def _start_mta_sts(self):
        self.sts_root = hmtest._mkdir(os.path.join(self.w, "mta-sts", ".well-known"), 0o755)
        self.sts_port = hmtest.free_port()
        self.sts_good = self._leaf("mta-sts", [f"mta-sts.{DOMAIN}"])
        self.sts_wrong = self._leaf("mta-sts-wrong", [HOSTNAME])
        self.write_policy(self.GOOD_POLICY)
        self.serve_mta_sts(self.sts_good)

    def write_policy(self, text):
        with open(os.path.join(self.sts_root, "mta-sts.txt"), "w") as f:
            f.write(text)

    def serve_mta_sts(self, cert_key):
        """(Re)start the policy's HTTPS server with this (cert, key)."""
        old = getattr(self, "sts_proc", None)
        if old is not None:
            hmtest._terminate(old)
        code = ("import functools, http.server, ssl, sys\n"
                "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[4])\n"
                "srv = http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), h)\n"
                "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
                "ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n"
                "srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n"
                "srv.serve_forever()\n")
        self.sts_proc = subprocess.Popen(
            ["/usr/bin/python3", "-I", "-c", code, str(self.sts_port), cert_key[0], cert_key[1],
             os.path.dirname(self.sts_root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proc = self.sts_proc
        hmtest._cleanups.append(lambda: hmtest._terminate(proc))
        hmtest.wait_port(self.sts_port)

    def spki_sha256(self):
        pub = subprocess.run(["openssl", "x509", "-in", self.cert, "-noout", "-pubkey"],
                             check=True, capture_output=True, text=True).stdout
        der = base64.b64decode("".join(ln for ln in pub.splitlines() if "-----" not in ln))
        return hashlib.sha256(der).hexdigest().upper()

    def _zone_records(self):
        return [
            "@ IN MX 10 mail",
            f"mail IN A {ADDR}",
            '@ IN TXT "v=spf1 mx -all"',
            f'{DKIM_SELECTORS[0]}._domainkey IN TXT "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC1"',
            f'{DKIM_SELECTORS[1]}._domainkey IN TXT "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC2"',
            '_dmarc IN TXT "v=DMARC1; p=quarantine; rua=mailto:postmaster@home.com.bo"',
            '_mta-sts IN TXT "v=STSv1; id=20261205"',
            "mta-sts IN A 127.0.0.1",
            '_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:postmaster@home.com.bo"',
            f"_25._tcp.mail IN TLSA 3 1 1 {self.spki_sha256()}",
        ]

    def _retarget_exim(self):
        """Exim's generated configuration, pointed at this host's certificate,
        its own copy of homemail_scan.so, and a second port with TLS on connect."""
        crt, key = hmtest.test_cert()
        text = open(self.ex.conf_path).read()
        text = text.replace(crt, self.cert).replace(key, self.key)
        text = text.replace(os.path.join(hmtest.BUILD, "homemail_scan.so"), self.scan_so)
        text = re.sub(r"^(HOMEMAIL_SMTP_PORTS = \d+)$", rf"\1 : {self.smtps_port}", text,
                      count=1, flags=re.M)
        text = re.sub(r"^tls_on_connect_ports = 465$", f"tls_on_connect_ports = {self.smtps_port}",
                      text, count=1, flags=re.M)
        with open(self.ex.conf_path, "w") as f:
            f.write(text)
        inc = os.path.join(self.ex.w, "share", "local_scan.conf")   # names the module too
        with open(inc) as f:
            text = f.read().replace(os.path.join(hmtest.BUILD, "homemail_scan.so"), self.scan_so)
        with open(inc, "w") as f:
            f.write(text)

    def write_backup(self, t, result, size, message=""):
        """The state file as homemail-backup writes it (docs/operations.md)."""
        with open(self.backup_state, "w") as f:
            json.dump({"time": int(t), "result": result, "size": size,
                       "message": message}, f)

    def write_conf(self, **over):
        b = self.dv.base_dir
        conf = {
            "hostname": HOSTNAME, "domains": DOMAIN, "address": "127.0.0.1",
            "resolver": self.world.dns_addr,
            "smtp_ports": str(self.ex.smtp_port), "smtps_ports": str(self.smtps_port),
            "imaps_port": str(self.dv.imaps_port), "pop3s_port": str(self.dv.pop3s_port),
            "sieve_port": "0", "https_port": "0", "dns_server": self.world.dns_addr,
            "mta_sts_port": str(self.sts_port),
            "rspamd": "no", "clamd": "no",
            "auth_sockets": " ".join(os.path.join(b, n) for n in (
                "auth-client", "auth-userdb", "auth-master", "auth-exim", "auth-exim-master")),
            "tls_cert": self.cert, "tls_ca": self.ca,
            "zone_files": f"{DOMAIN}={self.expected_zone}",
            "dkim_selectors": "auto",
            "exim_config": self.ex.conf_path,
            "dovecot_config": self.dv.conf_path, "dovecot_log": self.dv.log_path,
            "lockout_db": os.path.join(self.dv.w, "state", "lockout.db"),
            "disk_paths": f"{self.spool} {self.ex.w}/spool",
            "backup_state": self.backup_state, "backup_required": "yes",
            "junk_plugin": "no",
            "programs": " ".join(os.path.join(hmtest.BUILD, p) for p in (
                "homemail-deliver", "homemail-sieve", "homemail-scan", "homemail-user")),
            "package_files": "no",
        }
        conf.update(over)
        with open(self.conf, "w") as f:
            f.write("# written by hm_status.py\n")
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())

    # -- running the tool --------------------------------------------------------
    def status(self, *args):
        """(exit code, parsed --json output, stderr)."""
        r = subprocess.run([os.path.join(hmtest.BUILD, "homemail-status"), "--config", self.conf,
                            "--json"] + list(args), capture_output=True, text=True, timeout=120,
                           env=self.env())
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            raise AssertionError(f"not JSON (exit {r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r.returncode, doc, r.stderr

    def env(self):
        """homemail-status's environment: with SANITIZE=1 the exim4 it runs
        (-bh probe) loads the ASan-built homemail_scan.so, as the daemon does."""
        return dict(os.environ, **self.ex.env)

    def restart_daemons(self):
        self.ex.stop()
        self.dv.restart()
        self.ex.start()

    def close(self):
        hmtest._terminate(self.sts_proc)
        self.ex.stop()
        self.dv.stop()
        subprocess.run(["umount", "-l", self.spool], capture_output=True)
        self.world.close()


class _TLSDovecot(hmtest.PackageDovecot):
    """PackageDovecot with the StatusHost's certificate, and imaps/pop3s
    with TLS on connect (as Debian's 10-master.conf; the harness's package
    template leaves them plain)."""

    def __init__(self, sh, **kw):
        self._sh = sh
        kw["extra_conf"] = ("service imap-login {\n  inet_listener imaps {\n    ssl = yes\n  }\n}\n"
                            "service pop3-login {\n  inet_listener pop3s {\n    ssl = yes\n  }\n}\n")
        super().__init__(auth_backend=True, **kw)

    def _conf_text(self, **fields):
        fields["cert"], fields["key"] = self._sh.cert, self._sh.key
        return super()._conf_text(**fields)

    def _render_auth(self, w):
        """The package's auth backend serving the accounts of a group of
        this host's own (empty): `doveadm quota get -A` then walks this
        host's users only, not the test users other runs create and remove
        at the same time."""
        inc = super()._render_auth(w)
        group = "hmst" + secrets.token_hex(4)
        subprocess.run(["groupadd", "-K", "GID_MIN=20000", group], check=True,
                       capture_output=True)
        hmtest._cleanups.append(lambda: subprocess.run(["groupdel", group], capture_output=True))
        site = os.path.join(w, "dovecot-authdb.conf")
        text = open(site).read()
        assert " group=users " in text, text
        with open(site, "w") as f:
            f.write(text.replace(" group=users ", f" group={group} "))
        return inc
