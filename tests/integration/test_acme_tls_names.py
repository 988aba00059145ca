"""test_acme_tls_names.py — the names of the lab certificate (issue 16;
docs/certificates.md, "Names"): the playbook's tls role, run for real by
ansible-playbook on this host into a private tls_dir (nothing else touched).

Guards:
  * a fresh run makes a self-signed certificate carrying exactly tls_names:
    mail_hostname and mta-sts./autoconfig./autodiscover. of every mail
    domain (the names Apache serves: webmail, MTA-STS policy, client
    autoconfiguration), and the local trust anchor (tls_ca) is that cert;
  * the second run changes nothing (changed=0: the lab stays idempotent);
  * a domain added to the inventory makes it again with the new names, and
    tls_ca follows (Roundcube would refuse the new certificate otherwise);
    removing the domain drops its names again; each followed by a run
    with changed=0;
  * a certificate this role did not make (ACME's, issuer != subject) is
    left alone, whatever names it carries (the acme role keeps those);
  * the acme role asks for the same names (acme_names is tls_names).
"""
import json
import os
import re
import shutil
import subprocess

import hmtest

ROLES = os.path.join(hmtest.TOP, "ansible", "roles")
HOST = "mail.home.com.bo"
DOMAINS = ["home.com.bo", "ventas.com.bo"]

PLAYBOOK = """\
- name: The tls role alone
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {roles}/acme/defaults/main.yml
  handlers:
    - name: Exim4 config changed
      ansible.builtin.debug:
        msg: restart
    - name: Dovecot config changed
      ansible.builtin.debug:
        msg: restart
    - name: Apache2 config changed
      ansible.builtin.debug:
        msg: restart
  roles:
    - role: tls
  post_tasks:
    - name: What acme would request
      ansible.builtin.copy:
        content: "{{{{ {{'acme': acme_names, 'tls': tls_names}} | to_json }}}}"
        dest: "{{{{ tls_dir }}}}/names.json"
        mode: "0644"
      changed_when: false
"""


def _play(d, extra_domains):
    """Run the tls role with mail_extra_domains = extra_domains; returns the
    recap's changed count."""
    with open(os.path.join(d, "vars.json"), "w") as f:
        json.dump({"mail_domain": DOMAINS[0], "mail_hostname": HOST,
                   "mail_extra_domains": [{"name": n} for n in extra_domains],
                   "tls_dir": os.path.join(d, "tls"), "tls_cert_src": "", "tls_key_src": ""}, f)
    r = subprocess.run(["ansible-playbook", "-i", "localhost,", os.path.join(d, "play.yml"),
                        "-e", "@" + os.path.join(d, "vars.json")],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, ANSIBLE_ROLES_PATH=ROLES, ANSIBLE_NOCOLOR="1",
                                ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_CALLBACKS_ENABLED="",
                                ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
                                ANSIBLE_LOCAL_TEMP=os.path.join(d, "tmp")))
    m = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", r.stdout)
    assert r.returncode == 0 and m, r.stdout[-3000:] + r.stderr[-2000:]
    return int(m.group(1))


def _names(pem):
    out = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-ext", "subjectAltName"],
                         capture_output=True, text=True, check=True).stdout
    return sorted(re.findall(r"DNS:([^,\s]+)", out))


def _want(domains):
    return sorted([HOST] + [p + d for d in domains
                            for p in ("mta-sts.", "autoconfig.", "autodiscover.")])


def _verifies(d, name):
    """openssl verify of the served certificate against tls_ca for name."""
    tls = os.path.join(d, "tls")
    return subprocess.run(["openssl", "verify", "-CAfile", os.path.join(tls, "ca.pem"),
                           "-verify_hostname", name, os.path.join(tls, "cert.pem")],
                          capture_output=True).returncode == 0


def test_self_signed_certificate_carries_every_served_name():
    d = hmtest._workdir("tlsnames")
    os.makedirs(os.path.join(d, "tmp"))
    with open(os.path.join(d, "play.yml"), "w") as f:
        f.write(PLAYBOOK.format(roles=ROLES))
    cert = os.path.join(d, "tls", "cert.pem")

    # fresh: every served name of both domains, trusted by tls_ca
    assert _play(d, DOMAINS[1:]) > 0
    assert _names(cert) == _want(DOMAINS)
    for n in _want(DOMAINS):
        assert _verifies(d, n), n
    with open(os.path.join(d, "tls", "names.json")) as f:
        names = json.load(f)
    assert sorted(names["acme"]) == sorted(names["tls"]) == _want(DOMAINS)
    key_before = open(os.path.join(d, "tls", "private", "key.pem")).read()
    assert _play(d, DOMAINS[1:]) == 0                       # idempotent
    assert open(os.path.join(d, "tls", "private", "key.pem")).read() == key_before

    # a third domain: made again, tls_ca follows; then idempotent again
    three = DOMAINS + ["compras.com.bo"]
    assert _play(d, three[1:]) > 0
    assert _names(cert) == _want(three)
    assert _verifies(d, "autoconfig.compras.com.bo") and _verifies(d, "mta-sts.compras.com.bo")
    assert _play(d, three[1:]) == 0
    # removed again: its names go
    assert _play(d, DOMAINS[1:]) > 0
    assert _names(cert) == _want(DOMAINS)
    assert _play(d, DOMAINS[1:]) == 0

    # a certificate the role did not make (issued by a CA) stays as it is
    ca_key, ca_cert = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "2",
                    "-subj", "/CN=test ACME root", "-keyout", ca_key, "-out", ca_cert],
                   check=True, capture_output=True)
    key = os.path.join(d, "tls", "private", "key.pem")
    csr = os.path.join(d, "leaf.csr")
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=" + HOST,
                    "-addext", "subjectAltName=DNS:" + HOST, "-out", csr],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
                    "-CAcreateserial", "-days", "2", "-copy_extensions", "copy", "-out", cert],
                   check=True, capture_output=True)
    shutil.copyfile(ca_cert, os.path.join(d, "tls", "ca.pem"))
    issued = open(cert).read()
    assert _play(d, DOMAINS[1:]) == 0
    assert open(cert).read() == issued
    assert open(os.path.join(d, "tls", "ca.pem")).read() == open(ca_cert).read()
