"""hm_mailauth_out.py — pieces for the outgoing mail-authentication tests
(test_mailauth_out.py): DKIM keys made the way the playbook makes them, the
DNS records the lab zone publishes, an "outside world" Exim that logs what a
receiving site sees (SPF result, each DKIM signature's verification), and an
independent checker (python3-dkim, python3-spf, python3-authheaders from
Debian: not homemail's code, not Exim's) run inside a World host so it asks
the test's bind9.

Relies on hmtest (Exim, the trusted-config slots) and hm_world (namespaces,
DNS).  Everything lives under /var/tmp/hmtest and goes with hmtest's cleanups.
"""
import grp
import json
import os
import subprocess
import textwrap

import jinja2

import hmtest

SYS_PY = "/usr/bin/python3"     # Debian's python: dkim, spf, authheaders


# --- DKIM keys and records --------------------------------------------------
def make_dkim_keys(keydir, domain, rsa_selector, ed_selector):
    """RSA 2048 and Ed25519 private keys in keydir/<domain>/<selector>.private
    (root:Debian-exim 0640, as the playbook's mailauth role leaves them);
    returns the records to publish, as the role computes them."""
    d = os.path.join(keydir, domain)
    os.makedirs(d, exist_ok=True)
    gid = grp.getgrnam("Debian-exim").gr_gid
    for p in (keydir, d):
        os.chown(p, 0, gid)
        os.chmod(p, 0o750)
    rsa = os.path.join(d, rsa_selector + ".private")
    ed = os.path.join(d, ed_selector + ".private")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", rsa], check=True, capture_output=True)
    subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", ed],
                   check=True, capture_output=True)
    for p in (rsa, ed):
        os.chown(p, 0, gid)
        os.chmod(p, 0o640)
    return [{"selector": rsa_selector, "k": "rsa", "p": _pem_body(rsa)},
            {"selector": ed_selector, "k": "ed25519", "p": _pem_body(ed)[16:]}]


def _pem_body(private_path):
    """The playbook's derivation of p=: the base64 body of `openssl pkey
    -pubout` (for Ed25519 the role drops the 16 characters of the SPKI
    prefix, leaving the bare key)."""
    pem = subprocess.run(["openssl", "pkey", "-pubout", "-in", private_path],
                         check=True, capture_output=True, text=True).stdout
    return "".join(pem.strip().splitlines()[1:-1])


ZONE_TEMPLATE = os.path.join(hmtest.TOP, "ansible", "roles", "dns", "templates")


def lab_zone_records(mail_addr, dkim_records, dmarc_policy, rua, mta_sts_id="test1",
                     extra_domain=None):
    """The records the lab playbook's zone template (dns role, db.zone.j2;
    db.extra-zone.j2 for extra_domain, a further mail domain whose records
    dkim_records are) publishes, rendered as Ansible does (trim_blocks) for
    these values, as record lines for hm_world (its SOA/NS replace the
    template's)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ZONE_TEMPLATE),
                             trim_blocks=True, undefined=jinja2.StrictUndefined)
    # Ansible's filters the template uses
    env.filters["bool"] = lambda v: str(v).lower() in ("1", "true", "yes", "on")
    tpl = "db.extra-zone.j2" if extra_domain else "db.zone.j2"
    text = env.get_template(tpl).render(
        ansible_managed="test", mail_domain=hmtest.MAIL_DOMAIN,
        mail_hostname="mail." + hmtest.MAIL_DOMAIN, mail_address=mail_addr,
        dns_ttl=60, dns_serial=1, dmarc_policy=dmarc_policy, dmarc_rua=rua,
        dkim_records=[] if extra_domain else dkim_records,
        dkim_records_all=[dict(r, domain=extra_domain) for r in dkim_records]
        if extra_domain else [],
        dns_extra_domain=extra_domain, mail_extra_domains=[],
        mta_sts_id=mta_sts_id, tlsrpt_rua=rua,
        dns_tlsa=False)                # DANE records: tests/integration/test_acme.py
    out = []
    for ln in text.splitlines():
        if not ln.strip() or ln.startswith((";", "$")) or "\tNS\t" in ln:
            continue
        if ln.startswith(("@\tIN\tSOA", "\t\t")):       # the template's SOA block
            continue
        out.append("@" + ln if ln[:1] == "\t" else ln)
    return out


# --- the outside world's receiving Exim -------------------------------------
OUTSIDE_RCPT_ACL = """\
  warn    spf = pass : fail : softfail : neutral : none : permerror : temperror
          logwrite = hmtest-spf sender=<$sender_address> ip=$sender_host_address result=$spf_result
  accept  domains = {domains}
"""

# acl_smtp_dkim: one line per signature Exim verified (data_acl ends the
# DATA ACL with accept; the template's closing accept ends this one).
OUTSIDE_DATA_ACL = """\
  accept

acl_hmtest_dkim:
  warn    logwrite = hmtest-dkim d=$dkim_cur_signer s=$dkim_selector a=$dkim_algo \
status=$dkim_verify_status reason=$dkim_verify_reason
"""

OUTSIDE_AUTH = """
hmtest_plain:
  driver = plaintext
  public_name = PLAIN
  server_condition = ${if and{{eq{$auth2}{USER}}{eq{$auth3}{PASSWORD}}}}
  server_set_id = $auth2
  server_advertise_condition = ${if eq{$tls_in_cipher}{}{no}{yes}}
"""


class OutsideExim(hmtest.Exim):
    """A receiving site in a World host: accepts mail for `domains` on port
    `port` (25: what dnslookup/remote_smtp connect to), logs the SPF result of
    each sender and each DKIM signature's status, keeps the messages in
    outbox/ (outbox_messages()).  auth=(user, password): a relay that takes
    mail for anywhere from that client (the smarthost); cert: (crt, key) to
    present instead of the harness's test certificate."""

    def __init__(self, host, domains, port=25, auth=None, cert=None):
        self._port = port
        super().__init__(host=host, transport_command="/bin/false",
                         rcpt_acl=OUTSIDE_RCPT_ACL.format(domains=" : ".join(domains)),
                         data_acl=OUTSIDE_DATA_ACL,
                         extra_main=("acl_smtp_dkim = acl_hmtest_dkim\n"
                                     "dkim_verify_signers = $dkim_signers\n"
                                     "log_selector = +dkim_verbose +received_recipients\n"),
                         tls=True)
        text = open(self.conf_path).read()
        if cert:
            crt, key = hmtest.test_cert()
            text = text.replace(crt, cert[0]).replace(key, cert[1])
        if auth:
            text += OUTSIDE_AUTH.replace("USER", auth[0]).replace("PASSWORD", auth[1])
        with open(self.conf_path, "w") as f:
            f.write(text)

    def _setup_dirs(self, host=None):
        super()._setup_dirs(host)
        self.smtp_port = self._port

    def lines(self, tag):
        return [ln for ln in self.mainlog().splitlines() if tag in ln]


def make_cert(name):
    """(crt, key) of a self-signed certificate for name (its own trust anchor)."""
    d = hmtest._workdir("cert-" + name.split(".")[0])
    crt, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "2",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    os.chmod(crt, 0o644)
    os.chmod(key, 0o644)        # test only: Debian-exim reads it
    return crt, key


# --- sendmail for homemail-deliver inside a World host ------------------------
# homemail-deliver runs `HOMEMAIL_SENDMAIL -oi -f SENDER -- TARGET` as the
# user; a user cannot run exim4 -C with a private configuration and keep the
# privilege to write its spool, so this stand-in hands the same envelope and
# bytes to the private Exim over SMTP on the host's loopback (a local
# program, as Debian's relay_from_hosts treats it).
SENDMAIL_VIA_SMTP = textwrap.dedent("""\
    import smtplib, sys
    port = int(sys.argv[1])
    args = sys.argv[2:]
    sender = args[args.index("-f") + 1]
    rcpts = args[args.index("--") + 1:]
    data = sys.stdin.buffer.read().replace(b"\\r\\n", b"\\n").replace(b"\\n", b"\\r\\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        s.sendmail("" if sender == "<>" else sender, rcpts, data)
""")


def sendmail_stand_in(port):
    """The HOMEMAIL_SENDMAIL value (space separated) for the stand-in."""
    d = hmtest._workdir("sendmail-smtp")
    path = os.path.join(d, "sendmail.py")
    with open(path, "w") as f:
        f.write(SENDMAIL_VIA_SMTP)
    os.chmod(path, 0o644)
    return f"{SYS_PY} {path} {port}"


# --- independent verdicts ----------------------------------------------------
CHECKER = textwrap.dedent("""\
    import json, sys
    import dkim, spf
    import authheaders
    path, ip, mail_from, helo = sys.argv[1:5]
    msg = open(path, "rb").read()
    out = {"dkim": []}
    d = dkim.DKIM(msg)
    sigs = [h for h in d.headers if h[0].lower() == b"dkim-signature"]
    for i, (_, value) in enumerate(sigs):
        tags = dict(t.strip().split("=", 1) for t in
                    value.decode().replace("\\r\\n", "").split(";") if "=" in t)
        try:
            ok = dkim.DKIM(msg).verify(idx=i)
        except dkim.DKIMException:
            ok = False
        out["dkim"].append({"d": tags.get("d", "").strip(), "s": tags.get("s", "").strip(),
                            "a": tags.get("a", "").strip(), "pass": bool(ok)})
    out["spf"] = spf.check2(i=ip, s=mail_from, h=helo)[0]
    out["ar_dkim_only"] = authheaders.authenticate_message(msg, "checker.test", spf=False)
    out["ar"] = authheaders.authenticate_message(msg, "checker.test", spf=True, ip=ip,
                                                 mail_from=mail_from, helo=helo)
    print(json.dumps(out))
""")


def check_independently(host, message, ip, mail_from, helo):
    """Verdicts of Debian's python3-dkim (each signature), python3-spf and
    python3-authheaders (DMARC: with SPF+DKIM, and with DKIM alone), asked
    inside host (its resolver is the World's bind9)."""
    d = hmtest._workdir("checker")
    path = os.path.join(d, "msg.eml")
    with open(path, "wb") as f:
        f.write(message)
    r = host.run([SYS_PY, "-c", CHECKER, path, ip, mail_from, helo], text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def strip_trace(raw):
    """The message as the sender sent it: without the fields the receiving
    Exim's appendfile added on top (Return-path, Envelope-to, Delivery-date)
    and its own Received field (the first one)."""
    head, sep, body = raw.partition(b"\n\n")
    lines = head.split(b"\n")
    out, skip_received = [], True
    i = 0
    while i < len(lines):
        ln = lines[i]
        name = ln.split(b":", 1)[0].lower()
        j = i + 1
        while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
            j += 1
        if name in (b"return-path", b"envelope-to", b"delivery-date"):
            pass
        elif name == b"received" and skip_received:
            skip_received = False
        else:
            out.extend(lines[i:j])
        i = j
    return b"\n".join(out) + sep + body


def header(raw, name):
    """First value of a header field (unfolded), or None."""
    head = raw.split(b"\n\n", 1)[0].decode(errors="replace")
    cur = None
    for ln in head.split("\n"):
        if ln[:1] in (" ", "\t") and cur is not None:
            cur += " " + ln.strip()
            continue
        if cur is not None:
            return cur
        if ln.lower().startswith(name.lower() + ":"):
            cur = ln.split(":", 1)[1].strip()
    return cur
