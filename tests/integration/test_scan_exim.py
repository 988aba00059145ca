"""test_scan_exim.py — homemail_scan.so inside a private real exim4:
loading (symbols, ABI), configuration errors, the X-Homemail-Scan header,
and the ${dlfunc ... homemail_user_exists} recipient check against a private
Dovecot's auth-master socket, including Dovecot stopped -> 451, never "no".
"""
import os
import re
import smtplib
import subprocess

import pytest

import hmtest
from test_auth_exim import LISTENER as AUTH_LISTENER, rcpt_codes

# Built with SANITIZE=1 the module needs the ASan/UBSan runtimes, which the
# stock exim4 only has when they are preloaded (forked receiving processes
# inherit them).  Reports go to ASAN_LOGS; the tests require it to stay empty.
# test_scan_corpus.py shares these.
ASAN_LOGS = os.path.join(hmtest.BASE, "scan-asan-logs")


def san_env():
    return hmtest.sanitizer_env(ASAN_LOGS)


def san_reports():
    return sorted(os.listdir(ASAN_LOGS)) if os.path.isdir(ASAN_LOGS) else []

SO = os.path.join(hmtest.BUILD, "homemail_scan.so")
SCAN = os.path.join(hmtest.BUILD, "homemail-scan")
CLEAN = os.path.join(hmtest.TOP, "tests", "scan-corpus", "clean", "c03-attachments.eml")
EXE = os.path.join(hmtest.TOP, "tests", "scan-corpus", "hostile", "h01-exe-filename.eml")


def _dyn_symbols(path, undefined):
    args = ["nm", "-D", "--undefined-only" if undefined else "--defined-only", path]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    syms = set()
    for ln in out.splitlines():
        f = ln.split()
        if not f:
            continue
        kind, name = (f[0], f[1]) if undefined else (f[1], f[2])
        if undefined and kind in ("w", "v"):
            continue  # weak references need no definition
        syms.add(name)
    return syms


def _needed_libs(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    return [m.group(1) for m in re.finditer(r"=> (/\S+)", out)]


def test_module_symbols_resolve_against_exim():
    """Every symbol the module needs comes from exim4's exported symbols, from
    a versioned system library (glibc) or from a library it links (libarchive):
    Debian's exim does not export child_open* and most globals, and an
    unresolved symbol makes every message 451."""
    need = _dyn_symbols(SO, True)
    exim = {s.split("@")[0] for s in _dyn_symbols("/usr/sbin/exim4", False)}
    libs = set()
    for lib in _needed_libs(SO):
        libs |= {s.split("@")[0] for s in _dyn_symbols(lib, False)}
    missing = sorted(s for s in need
                     if "@" not in s and s not in exim and s not in libs)
    assert missing == [], f"not exported by exim4: {missing}"
    exim_used = sorted(s for s in need if "@" not in s and s in exim)
    assert "header_add" in exim_used and "log_write" in exim_used
    assert not [s for s in need if s.startswith("child_open")]
    exported = _dyn_symbols(SO, False)
    assert {"local_scan", "local_scan_version_major", "local_scan_version_minor",
            "homemail_user_exists", "homemail_mime_verdict", "homemail_route"} <= exported
    # only the entry points: internal names cannot clash with exim's
    # (+ homemail_route for the routers, docs/domains.md)
    assert len([s for s in exported if not s.startswith("_")]) == 6, exported


def test_abi_matches_installed_exim():
    """local_scan_version_major() equals the ABI the installed exim4 reports
    (a wrong major crashes Debian's exim with 421).  The module is loaded into
    a stub program that defines every exim symbol it references."""
    abi = subprocess.run(["exim4-localscan-plugin-config", "--localscan-apiversion"],
                         capture_output=True, text=True, check=True).stdout.strip()
    major, minor = (int(x) for x in abi.split("."))
    exim = {s.split("@")[0] for s in _dyn_symbols("/usr/sbin/exim4", False)}
    stubs = sorted(s for s in _dyn_symbols(SO, True) if "@" not in s and s in exim)
    code = "#include <dlfcn.h>\n#include <stdio.h>\n"
    code += "".join(f"char {s}[64];\n" for s in stubs)
    code += ("int main(void){void*h=dlopen(\"%s\",RTLD_NOW);if(!h){puts(dlerror());return 1;}"
             "int(*ma)(void)=(int(*)(void))dlsym(h,\"local_scan_version_major\");"
             "int(*mi)(void)=(int(*)(void))dlsym(h,\"local_scan_version_minor\");"
             "printf(\"%%d.%%d\\n\",ma?ma():-1,mi?mi():-1);return 0;}" % SO)
    w = hmtest._workdir("scanabi")
    src, exe = os.path.join(w, "a.c"), os.path.join(w, "a")
    open(src, "w").write(code)
    subprocess.run(["cc", "-rdynamic", "-o", exe, src, "-ldl"], check=True)
    r = subprocess.run([exe], capture_output=True, text=True, env=dict(os.environ, **san_env()))
    got_major, got_minor = (int(x) for x in r.stdout.strip().split("."))
    assert got_major == major, r.stdout + r.stderr
    assert got_minor <= minor


def make_sink(name):
    """(script, dir): a transport command that stores each message it is
    given as a file <dir>/<time>.<pid>.eml, written under a temporary name
    first (test_scan_corpus.py and test_scan_bombs.py share it)."""
    w = hmtest._workdir(name)
    out = os.path.join(w, "out")
    os.mkdir(out)
    os.chmod(out, 0o1777)
    sink = os.path.join(w, "sink.sh")
    with open(sink, "w") as f:
        f.write('#!/bin/sh\nf="%s/$(date +%%s%%N).$$"\ncat > "$f.tmp" && mv "$f.tmp" "$f.eml"\n' % out)
    os.chmod(sink, 0o755)
    return sink, out


def _sink_exim(conf_path, **kw):
    sink, out = make_sink("scan-x")
    extra = f"add_environment = HOMEMAIL_SCAN_CONF={conf_path}\n" if conf_path else ""
    e = hmtest.Exim(None, transport_command=sink, local_scan=SO, extra_main=extra, env=san_env(),
                    **kw)
    return e, out


def _conf(text):
    """A scan.conf holding text, readable by Exim; returns its path."""
    w = hmtest._workdir("scanconf")
    p = os.path.join(w, "scan.conf")
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, 0o644)
    return p


def test_bad_config_defers_without_path(user):
    conf = _conf("max_depth = 20\nmax_parts = lots\n")
    e, out = _sink_exim(conf, probe=False)     # it defers every message: no start-up probe
    with e:
        with pytest.raises(smtplib.SMTPDataError) as ei:
            hmtest.send(e.smtp_port, "a@example.org", [f"{user.name}@home.com.bo"],
                        open(CLEAN, "rb").read())
        assert ei.value.smtp_code == 451
        text = ei.value.smtp_error.decode()
        assert conf not in text and "/" not in text, text
        log = e.mainlog()
        assert f"{conf}:2: max_parts" in log
        assert e.paniclog() == ""
    assert os.listdir(out) == []


def test_config_actions_apply_in_exim(user):
    """action_blocked = tag: the .exe is delivered, tagged in X-Homemail-Scan;
    action_blocked = freeze: accepted and frozen in the queue."""
    e, out = _sink_exim(_conf("action_blocked = tag\n"))
    with e:
        hmtest.send(e.smtp_port, "a@example.org", [f"{user.name}@home.com.bo"], open(EXE, "rb").read())
        f = hmtest.wait_for(lambda: [n for n in os.listdir(out) if n.endswith(".eml")], 60, 0.05,
                        "delivery")
        got = open(os.path.join(out, f[0]), "rb").read().decode()
        assert "X-Homemail-Scan: tag; parts=3; depth=1; rules=blocked" in got
    e, out = _sink_exim(_conf("action_blocked = freeze\n"))
    with e:
        hmtest.send(e.smtp_port, "a@example.org", [f"{user.name}@home.com.bo"], open(EXE, "rb").read())
        hmtest.wait_for(lambda: "frozen" in e.exim("-bp").stdout, 20, 0.1, "frozen message")
        assert os.listdir(out) == []


def test_forged_scan_header_removed(user):
    """A sender's own X-Homemail-Scan is dropped; only the module's remains."""
    e, out = _sink_exim(_conf(""))
    msg = open(CLEAN, "rb").read().replace(
        b"Subject:", b"X-Homemail-Scan: accept; parts=1; depth=0\nx-homemail-scan: forged\nSubject:", 1)
    with e:
        hmtest.send(e.smtp_port, "a@example.org", [f"{user.name}@home.com.bo"], msg)
        f = hmtest.wait_for(lambda: [n for n in os.listdir(out) if n.endswith(".eml")], 60, 0.05,
                            "delivery")
        head = open(os.path.join(out, f[0]), "rb").read().split(b"\n\n")[0]
        scan = [ln for ln in head.split(b"\n") if ln.lower().startswith(b"x-homemail-scan:")]
        assert scan == [b"X-Homemail-Scan: accept; parts=4; depth=1; "
                        b'attachments="report.pdf","photo.jpg"'], scan


def test_tempreject_action(user):
    e, out = _sink_exim(_conf("action_blocked = tempreject\n"))
    with e:
        with pytest.raises(smtplib.SMTPDataError) as ei:
            hmtest.send(e.smtp_port, "a@example.org", [f"{user.name}@home.com.bo"],
                        open(EXE, "rb").read())
        assert ei.value.smtp_code == 451
        assert b"blocked attachment type .exe" in ei.value.smtp_error


def test_missing_config_uses_defaults(user):
    e, out = _sink_exim("/nonexistent/homemail/scan.conf")
    with e:
        with pytest.raises(smtplib.SMTPDataError) as ei:
            hmtest.send(e.smtp_port, "a@example.org", [f"{user.name}@home.com.bo"],
                        open(EXE, "rb").read())
        assert ei.value.smtp_code == 550
        hmtest.send(e.smtp_port, "a@example.org", [f"{user.name}@home.com.bo"],
                    open(CLEAN, "rb").read())
        hmtest.wait_for(lambda: [n for n in os.listdir(out) if n.endswith(".eml")], 60, 0.05,
                        "delivery")


def test_cli_exit_codes_and_errors(tmp_path):
    conf = _conf("")
    r = subprocess.run([SCAN, "-c", conf, CLEAN, EXE], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stdout.splitlines()[0] == f"{CLEAN}: accept"
    assert f"{EXE}: reject: blocked attachment type .exe" in r.stdout
    r = subprocess.run([SCAN, "-c", _conf("bogus = 1\n"), CLEAN], capture_output=True, text=True)
    assert r.returncode == 78 and ":1: bogus: unknown key" in r.stderr
    r = subprocess.run([SCAN, "-c", conf, "/nonexistent.eml"], capture_output=True, text=True)
    assert r.returncode == 66
    r = subprocess.run([SCAN], capture_output=True, text=True)
    assert r.returncode == 64
    r = subprocess.run([SCAN, "-c", _conf("action_blocked = tempreject\n"), EXE],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout.startswith("tempreject: ")


# ---- ${dlfunc ... homemail_user_exists} -------------------------------------
# the auth-master listener Exim's lookup connects to, as in test_auth_exim.py
LISTENER = "auth_username_format = %Ln\n" + AUTH_LISTENER


def _rcpt_codes(port, rcpts):
    return rcpt_codes(port, rcpts, source="127.0.0.1")


def test_dlfunc_user_exists_and_defers(user):
    d = hmtest.Dovecot(None, users=[user], extra_conf=LISTENER).start()
    sock = os.path.join(os.path.dirname(d.auth_master_socket), "auth-exim-master")
    acl = ("  deny    domains = +local_domains\n"
           f"          !condition = ${{dlfunc{{{SO}}}{{homemail_user_exists}}"
           f"{{$local_part@$domain}}{{{sock}}}}}\n"
           "          message = unknown user\n")
    e, out = _sink_exim(_conf("auth_timeout = 1500\n"), rcpt_acl=acl)
    try:
        with e:
            good, bad = f"{user.name}@home.com.bo", "nosuchuser9@home.com.bo"
            codes = _rcpt_codes(e.smtp_port, [good, bad])
            assert codes == {good: 250, bad: 550}, (codes, e.mainlog(), d.log())
            # the answer comes from Dovecot: a user Dovecot does not know is refused
            d.stop()
            codes = _rcpt_codes(e.smtp_port, [good, bad])
            assert codes == {good: 451, bad: 451}, codes
            assert "homemail_user_exists: userdb unreachable" in e.mainlog()
            # Exim itself records a deferred ACL expansion in the panic log (an
            # admin should hear that Dovecot is down); nothing else is there
            panic = [ln for ln in e.paniclog().splitlines() if ln]
            assert panic and all("temporarily unavailable" in ln for ln in panic), panic
    finally:
        d.stop()


def test_dlfunc_expand_as_root(user):
    """The same function through exim -be (the admin's way to try it)."""
    d = hmtest.Dovecot(None, users=[user], extra_conf=LISTENER).start()
    try:
        e, out = _sink_exim(_conf(""))
        ask = lambda who: e.exim("-be", f"${{dlfunc{{{SO}}}{{homemail_user_exists}}{{{who}}}"
                                       f"{{{d.auth_master_socket}}}}}").stdout.strip()
        assert ask(f"{user.name}@home.com.bo") == "yes"
        assert ask("nosuchuser9@home.com.bo") == "no"
        d.stop()
        r = e.exim("-be", f"${{dlfunc{{{SO}}}{{homemail_user_exists}}{{{user.name}}}"
                          f"{{{d.auth_master_socket}}}}}")
        assert r.stdout.strip() not in ("yes", "no")
        assert "temporarily unavailable" in (r.stdout + r.stderr)
    finally:
        d.stop()
