"""Outgoing mail authentication in the running lab (docs/mailauth.md,
"Outgoing"): the zone's SPF, DKIM, DMARC, MTA-STS and TLS-RPT records are
present and valid, checked with Debian's python3-spf, python3-dkim and
python3-authheaders against the lab's bind9 (not homemail's code); the
MTA-STS policy is served over HTTPS; Exim signs with the published keys and
holds the SRS secret."""
import base64
import grp
import hashlib
import os
import re
import socket
import stat
import subprocess
import time

import dns.resolver
import dkim
import spf
import authheaders
import yaml

import labconf as L

INVENTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ansible",
                         "inventories", "lab", "group_vars", "mailservers.yml")
DKIM_DIR = "/etc/exim4/dkim/" + L.DOMAIN
SRS_SECRET = "/etc/exim4/homemail-srs.secret"

# every DNS library below asks the lab's bind9, whatever /etc/resolv.conf says
_res = dns.resolver.Resolver(configure=False)
_res.nameservers = ["127.0.0.1"]
_res.lifetime = 10
dns.resolver.default_resolver = _res


def _inv(name):
    with open(INVENTORY, encoding="utf-8") as f:
        v = yaml.safe_load(f)[name]
    return v.replace("{{ mail_domain }}", L.DOMAIN) if isinstance(v, str) else v


def _txt(name):
    return ["".join(s.decode() for s in r.strings) for r in _res.resolve(name, "TXT")]


def _mail_address():
    return _res.resolve(L.HOST, "A")[0].address


def _out(*cmd, stdin=None):
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60,
                          check=True).stdout


def _selectors():
    """The selectors Exim signs with (HOMEMAIL_DKIM_SELECTORS, as Exim reads it)."""
    out = _out("exim4", "-bP", "transport", "remote_smtp")
    m = re.search(r"^dkim_selector = (.*)$", out, re.M)
    assert m, "remote_smtp has no dkim_selector:\n" + out
    return [s.strip() for s in m.group(1).split(":")]


def _message(frm, subject="homemail lab DKIM probe"):
    return (f"From: {frm}\r\nTo: someone@example.org\r\nSubject: {subject}\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
            f"Message-ID: <{os.urandom(8).hex()}@{L.DOMAIN}>\r\n\r\nHola.\r\n").encode()


def _sign(msg, selector, domain=L.DOMAIN):
    """Sign with the lab's own private key of that selector (python3-dkim)."""
    path = os.path.join("/etc/exim4/dkim", domain, selector + ".private")
    if selector.startswith("e"):
        der = subprocess.run(["openssl", "pkey", "-in", path, "-outform", "DER"],
                             capture_output=True, check=True).stdout
        key, alg = base64.b64encode(der[-32:]), b"ed25519-sha256"
    else:
        key, alg = open(path, "rb").read(), b"rsa-sha256"
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key,
                    signature_algorithm=alg, include_headers=[b"from", b"to", b"subject",
                                                              b"date", b"message-id"])
    return sig + msg


def test_spf_record_and_verdicts():
    records = [t for t in _txt(L.DOMAIN) if t.startswith("v=spf1")]
    assert records == ["v=spf1 mx -all"], records
    ip = _mail_address()
    assert spf.check2(i=ip, s="roberto@" + L.DOMAIN, h=L.HOST)[0] == "pass"
    assert spf.check2(i="192.0.2.77", s="roberto@" + L.DOMAIN, h="x.example")[0] == "fail"
    # the mail host's own name (HELO, bounces with an empty sender)
    assert spf.check2(i=ip, s="", h=L.HOST)[0] == "pass"


def test_dkim_records_match_the_keys_exim_signs_with():
    sels = _selectors()
    assert len(sels) == 2 and sels[0].startswith("r") and sels[1].startswith("e"), sels
    assert sels[0][1:] == sels[1][1:] == str(_inv("dkim_keys")[0]), sels
    for sel in sels:
        path = os.path.join(DKIM_DIR, sel + ".private")
        st = os.stat(path)
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0, (path, oct(st.st_mode))
        assert grp.getgrgid(st.st_gid).gr_name == "Debian-exim", path
        rec = _txt(f"{sel}._domainkey.{L.DOMAIN}")
        assert len(rec) == 1, rec
        tags = dict(t.strip().split("=", 1) for t in rec[0].split(";") if "=" in t)
        assert tags["v"] == "DKIM1"
        assert tags["k"] == ("rsa" if sel.startswith("r") else "ed25519"), tags
        pub = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                             capture_output=True, check=True).stdout
        if sel.startswith("r"):
            assert base64.b64decode(tags["p"]) == pub
            bits = re.search(r"(\d+) bit", _out("openssl", "pkey", "-in", path, "-text_pub",
                                                "-noout")).group(1)
            assert bits == "2048", bits
        else:
            assert base64.b64decode(tags["p"]) == pub[-32:]
        # a message signed with that key verifies against the published record
        assert dkim.verify(_sign(_message("roberto@" + L.DOMAIN), sel)), sel
        # and fails once its body changed
        assert not dkim.verify(_sign(_message("roberto@" + L.DOMAIN), sel)
                               .replace(b"Hola.", b"Hola!")), sel


def test_exim_signs_our_authenticated_mail_only():
    conf = _out("exim4", "-bP", "transport", "remote_smtp")
    expr = re.search(r"^dkim_domain = (.*)$", conf, re.M).group(1)
    assert os.path.dirname(DKIM_DIR) + "/" in conf, conf
    d = os.path.join(L.ARTIFACTS, "dkim-probe")
    os.makedirs(d, exist_ok=True)
    ours, theirs = os.path.join(d, "ours.eml"), os.path.join(d, "theirs.eml")
    with open(ours, "wb") as f:
        f.write(_message("roberto@" + L.DOMAIN).replace(b"\r\n", b"\n"))
    with open(theirs, "wb") as f:
        f.write(_message("alice@example.org").replace(b"\r\n", b"\n"))

    def domain_for(path):
        out = _out("exim4", "-oMai", "roberto", "-bem", path, stdin=expr + "\n")
        return out.splitlines()[0].lstrip(">").strip()     # the answer to the one line
    assert domain_for(ours) == L.DOMAIN, expr
    assert domain_for(theirs) == ""


def test_dmarc_record_and_independent_verdict():
    recs = [t for t in _txt("_dmarc." + L.DOMAIN) if t.startswith("v=DMARC1")]
    assert len(recs) == 1, recs
    tags = dict(t.strip().split("=", 1) for t in recs[0].split(";") if "=" in t)
    assert tags["p"] == _inv("dmarc_policy"), tags
    assert tags["rua"] == "mailto:" + _inv("dmarc_rua"), tags
    for sel in _selectors():
        signed = _sign(_message("roberto@" + L.DOMAIN), sel)
        ar = authheaders.authenticate_message(signed, "lab-check", spf=False)
        assert "dkim=pass" in ar and "dmarc=pass" in ar, (sel, ar)
    unsigned = _message("roberto@" + L.DOMAIN)
    ar = authheaders.authenticate_message(unsigned, "lab-check", spf=True, ip="192.0.2.77",
                                          mail_from="roberto@" + L.DOMAIN, helo="x.example")
    assert "dmarc=fail" in ar, ar


def _extra_domains():
    doms = [d for d in _inv("mail_extra_domains") or [] if d["name"] != L.DOMAIN]
    assert doms, "the lab inventory has no mail_extra_domains"
    return doms


def test_extra_domains_publish_spf_dkim_dmarc_of_their_own_keys():
    """Every further mail domain (issue 16): SPF, its own DKIM keys (the
    records match the keys Exim signs with, and Exim picks the domain for
    its From:), DMARC with its policy and rua (inventory, per domain)."""
    ip, sels = _mail_address(), _selectors()
    for d in _extra_domains():
        dom = d["name"]
        assert [t for t in _txt(dom) if t.startswith("v=spf1")] == ["v=spf1 mx -all"], dom
        assert spf.check2(i=ip, s="ana@" + dom, h=L.HOST)[0] == "pass", dom
        assert spf.check2(i="192.0.2.77", s="ana@" + dom, h="x.example")[0] == "fail", dom
        for sel in sels:
            path = os.path.join("/etc/exim4/dkim", dom, sel + ".private")
            st = os.stat(path)
            assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0, (path, oct(st.st_mode))
            assert grp.getgrgid(st.st_gid).gr_name == "Debian-exim", path
            pub = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                                 capture_output=True, check=True).stdout
            main = subprocess.run(["openssl", "pkey", "-in", os.path.join(DKIM_DIR, sel + ".private"),
                                   "-pubout", "-outform", "DER"], capture_output=True,
                                  check=True).stdout
            assert pub != main, (dom, sel)                  # its own key, not mail_domain's
            rec = _txt(f"{sel}._domainkey.{dom}")
            assert len(rec) == 1, rec
            tags = dict(t.strip().split("=", 1) for t in rec[0].split(";") if "=" in t)
            want = pub if sel.startswith("r") else pub[-32:]
            assert base64.b64decode(tags["p"]) == want, (dom, sel)
            msg = _message("ana@" + dom)
            assert dkim.verify(_sign(msg, sel, dom)), (dom, sel)
            ar = authheaders.authenticate_message(_sign(msg, sel, dom), "lab-check", spf=False)
            assert "dkim=pass" in ar and "dmarc=pass" in ar, (dom, sel, ar)
        recs = [t for t in _txt("_dmarc." + dom) if t.startswith("v=DMARC1")]
        assert len(recs) == 1, recs
        tags = dict(t.strip().split("=", 1) for t in recs[0].split(";") if "=" in t)
        assert tags["p"] == d.get("dmarc_policy", _inv("dmarc_policy")), tags
        rua = d.get("dmarc_rua", _inv("dmarc_rua"))
        assert tags["rua"] == "mailto:" + rua, tags
        if rua.endswith("@" + L.DOMAIN):                # the receiver's consent (RFC 7489 7.1)
            assert _txt(f"{dom}._report._dmarc.{L.DOMAIN}") == ["v=DMARC1"], dom
    # Exim's signing domain for an authenticated From: of an extra domain
    conf = _out("exim4", "-bP", "transport", "remote_smtp")
    expr = re.search(r"^dkim_domain = (.*)$", conf, re.M).group(1)
    path = os.path.join(L.ARTIFACTS, "dkim-probe-extra.eml")
    os.makedirs(L.ARTIFACTS, exist_ok=True)
    for d in _extra_domains():
        with open(path, "wb") as f:
            f.write(_message("ana@" + d["name"]).replace(b"\r\n", b"\n"))
        out = _out("exim4", "-oMai", "ana@" + d["name"], "-bem", path, stdin=expr + "\n")
        assert out.splitlines()[0].lstrip(">").strip() == d["name"], (expr, out)


def test_mta_sts_and_tls_rpt():
    _check_mta_sts(L.DOMAIN, _inv("tlsrpt_rua"))


def test_mta_sts_and_tls_rpt_extra_domains():
    """The same records, and the policy over HTTPS at mta-sts.<domain> with a
    certificate naming it, for every further mail domain."""
    for d in _extra_domains():
        _check_mta_sts(d["name"], d.get("tlsrpt_rua", _inv("tlsrpt_rua")))


def _check_mta_sts(domain, tlsrpt_rua):
    recs = _txt("_mta-sts." + domain)
    assert len(recs) == 1 and re.fullmatch(r"v=STSv1; id=[A-Za-z0-9]{1,32}", recs[0]), recs
    tls = _txt("_smtp._tls." + domain)
    assert tls == ["v=TLSRPTv1; rua=mailto:" + tlsrpt_rua], tls
    name = "mta-sts." + domain
    addr = _res.resolve(name, "A")[0].address
    with socket.create_connection((addr, 443), timeout=30) as raw:
        with L.tls_context().wrap_socket(raw, server_hostname=name) as s:   # checks the name
            s.sendall(f"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {name}\r\n"
                      "Connection: close\r\n\r\n".encode())
            resp = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                resp += chunk
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert re.search(rb"(?im)^content-type: text/plain", head), head
    lines = body.decode().split("\r\n")
    assert lines[-1] == "" and all(ln for ln in lines[:-1]), lines   # CRLF-terminated
    policy = dict(ln.split(": ", 1) for ln in lines[:-1])
    assert policy["version"] == "STSv1"
    assert policy["mode"] == _inv("mta_sts_mode") and policy["mode"] in ("testing", "enforce")
    mxs = [r.exchange.to_text().rstrip(".") for r in _res.resolve(domain, "MX")]
    assert policy["mx"] in mxs, (policy, mxs)
    assert 0 < int(policy["max_age"]) <= 31557600
    # the record's id follows the policy (the role hashes it)
    assert recs[0].endswith("id=" + hashlib.sha1(body).hexdigest()[:20]), (recs, body)


def test_srs_secret_works_with_exim():
    st = os.stat(SRS_SECRET)
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0
    assert grp.getgrgid(st.st_gid).gr_name == "Debian-exim"
    assert len(open(SRS_SECRET).read().strip()) >= 32
    key = "${readfile{%s}{}}" % SRS_SECRET
    enc = _out("exim4", "-be", "${srs_encode{%s}{alice@example.org}{%s}}" % (key, L.DOMAIN))
    enc = enc.strip().lstrip(">").strip()
    assert re.fullmatch(r"SRS0=[^=]+=[^=]+=example\.org=alice@" + re.escape(L.DOMAIN), enc), enc
    dec = _out("exim4", "-be", "${if inbound_srs{%s}{%s}{$srs_recipient}{invalid}}"
               % (enc.split("@")[0], key))
    assert dec.strip().lstrip(">").strip() == "alice@example.org", dec
