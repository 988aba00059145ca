"""test_scan_bombs.py — issue 14 through a private real exim4 with
homemail_scan.so loaded (and the same files through homemail-scan):

  * zip bombs (sizes in the local header, data descriptor, a zip inside a
    zip, many members) and a solid 7z bomb are stopped by the budgets of
    max_archive_inflate (bytes decompressed, sizes declared by members skipped
    unread): the verdict is the unscannable action (tag by default, reject
    when configured), and the log says a budget — not the clock — stopped it.  On the unfixed module the data-descriptor bombs
    were accepted untagged after seconds of CPU inside Exim.
  * the zip views have their own member bounds: a name only in the local
    headers (behind 10,000 harmless members in both views) and a name only in
    the central directory (which Explorer shows) are both rejected; too many
    members in one view is unscannable.
  * every reading of a file name is checked: eight RFC 2231 sections and a
    plain filename="evil.exe" is rejected (the unfixed module checked the
    first eight readings only); so is a name after 70 other parameters.

No timed assertions: CPU figures live in bench/scan/bombs.
"""
import os
import smtplib
import subprocess
import sys

import pytest

import hmtest
from test_scan_exim import _conf, make_sink

sys.path.insert(0, os.path.join(hmtest.TOP, "tests", "scan-corpus"))
import bombs  # noqa: E402

SO = os.path.join(hmtest.BUILD, "homemail_scan.so")
SCAN = os.path.join(hmtest.BUILD, "homemail-scan")
MiB = bombs.MiB
BUDGET_REASON = "decompression budget (max_archive_inflate) exhausted"
DECLARED_REASON = "declared size over max_archive_inflate"


def _exim(conf):
    sink, out = make_sink("scan-bomb")
    san = hmtest.sanitizer_env()
    e = hmtest.Exim(None, transport_command=sink, local_scan=SO,
                    extra_main=f"add_environment = HOMEMAIL_SCAN_CONF={conf}\n", env=san)
    e.san = san  # SANITIZE=1: ASan/UBSan reports land here; checked by _clean()
    return e, out


def _clean(e):
    assert hmtest.sanitizer_reports(e.san) == []
    assert e.paniclog() == ""


def _delivered(out, n):
    files = hmtest.wait_for(lambda: sorted(f for f in os.listdir(out) if f.endswith(".eml"))
                            if len([f for f in os.listdir(out) if f.endswith(".eml")]) >= n
                            else None, 120, 0.05, f"{n} deliveries")
    return [open(os.path.join(out, f), "rb").read() for f in files]


def _scan_header(raw):
    head = raw.split(b"\n\n")[0].decode()
    return [ln for ln in head.split("\n") if ln.startswith("X-Homemail-Scan:")]


def _cli(path, conf):
    r = subprocess.run([SCAN, "-c", conf, "-l", path], capture_output=True, text=True)
    return r.returncode, r.stdout


@pytest.fixture(scope="module")
def zips():
    """The zip bombs at 200 MiB (a 200 KB zip; over the 64 MiB default budget),
    plus the view and reading cases, as messages on disk."""
    d = hmtest._workdir("scan-bombs")
    msgs = {}
    for name, (att, data, _) in bombs.bombs(big=200 * MiB, many=(1000, 128 * 1024)).items():
        msgs[name] = bombs.message(att, data)
    harmless = [bombs.member(f"doc{i}.txt", b"hello") for i in range(10000)]
    msgs["local_only"] = bombs.message("docs.zip", bombs.zip_bytes(
        harmless + [bombs.member("evil.exe", b"MZ", central=False)]))
    msgs["central_only"] = bombs.message("docs.zip", bombs.zip_bytes(
        [bombs.member("readme.txt", b"hello", central_name="evil.exe")]))
    msgs["too_many"] = bombs.message("docs.zip", bombs.zip_bytes(
        [bombs.member(f"doc{i}.txt", b"hello") for i in range(20001)]))
    paths = {}
    for k, v in msgs.items():
        paths[k] = os.path.join(d, k + ".eml")
        with open(paths[k], "wb") as f:
            f.write(v)
    return paths


# bomb -> the budget that stops it: members libarchive would decompress to
# skip are read and counted; a member skipped for free counts its declared size
BOMBS = {"flat": DECLARED_REASON, "dd": BUDGET_REASON, "nested": BUDGET_REASON,
         "many": BUDGET_REASON}


def test_zip_bombs_stopped_by_budget_in_exim(user, zips):
    """Each bomb is delivered tagged unscannable, the mainlog naming the
    decompression budget; the daemon keeps answering."""
    conf = _conf("# defaults\n")
    e, out = _exim(conf)
    with e:
        for name in BOMBS:
            hmtest.send(e.smtp_port, "m@example.org", [f"{user.name}@home.com.bo"],
                        open(zips[name], "rb").read())
        got = _delivered(out, len(BOMBS))
        log = e.mainlog()
    _clean(e)
    for raw in got:
        hdr = _scan_header(raw)
        assert len(hdr) == 1 and "tag;" in hdr[0] and "rules=unscannable" in hdr[0], hdr
    for name, why in BOMBS.items():
        assert f'reason=archive "{name}.zip" not fully inspected: {why}' in log, \
            (name, log[-3000:])
    assert "time budget" not in log
    for name, why in BOMBS.items():
        rc, text = _cli(zips[name], conf)
        assert rc == 0 and "rules=unscannable" in text and why in text, (name, text)


def test_nested_bomb_rejected_when_configured(user, zips):
    """action_unscannable = reject: the 5 KB message holding a zip that holds
    the data-descriptor bomb gets 550 at DATA."""
    e, out = _exim(_conf("action_unscannable = reject\n"))
    with e:
        with pytest.raises(smtplib.SMTPDataError) as ei:
            hmtest.send(e.smtp_port, "m@example.org", [f"{user.name}@home.com.bo"],
                        open(zips["nested"], "rb").read())
        assert ei.value.smtp_code == 550
        assert BUDGET_REASON.encode() in ei.value.smtp_error
    _clean(e)
    assert os.listdir(out) == []


def test_7z_solid_bomb_stopped_by_budget(tmp_path):
    """A solid 7z of 8 MiB of zeros against a 1 MiB budget: listed by name only
    (free in libarchive's list mode), the declared sizes stop it."""
    data = bombs.sevenzip([(f"z{i}.bin", b"\0" * (2 * MiB)) for i in range(4)] +
                          [("evil.exe", b"MZ")])
    p = tmp_path / "s7.eml"
    p.write_bytes(bombs.message("s.7z", data, "application/x-7z-compressed"))
    rc, text = _cli(str(p), _conf("max_archive_inflate = 1M\n"))
    assert rc == 1 and 'member of "s.7z" "evil.exe"' in text, text  # every name still seen
    rc, text = _cli(str(p), _conf("max_archive_inflate = 1M\naction_blocked = tag\n"))
    assert rc == 0 and "rules=blocked,unscannable" in text, text
    rc, text = _cli(str(p), _conf("max_archive_inflate = 1M\naction_unscannable = reject\n"
                                  "action_blocked = tag\n"))
    assert rc == 1 and text.startswith("reject: ") and DECLARED_REASON in text, text
    # within the budget the member after the zeros is seen
    rc, text = _cli(str(p), _conf(""))
    assert rc == 1 and 'member of "s.7z" "evil.exe"' in text, text


def test_7z_nested_archive_behind_skipped_members(tmp_path):
    """A solid 7z: 8 MiB of zeros, then inner.zip holding evil.exe.  libarchive
    skips z.bin for free by name but then cannot read inner.zip ("Truncated
    7-Zip file body"): the unfixed scanner never saw evil.exe and accepted
    the message.  Now the members are read in order, counted: within the
    budget evil.exe is found; against a 1 MiB budget the verdict is the
    budget's (unscannable), never a silent accept."""
    inner = bombs.zip_bytes([bombs.member("evil.exe", b"MZ")])
    data = bombs.sevenzip([("z.bin", b"\0" * (8 * MiB)), ("inner.zip", inner)])
    p = tmp_path / "s7n.eml"
    p.write_bytes(bombs.message("s.7z", data, "application/x-7z-compressed"))
    rc, text = _cli(str(p), _conf(""))
    assert rc == 1 and 'member of "s.7z" "evil.exe"' in text, text
    rc, text = _cli(str(p), _conf("max_archive_inflate = 1M\naction_unscannable = reject\n"))
    assert rc == 1 and text.startswith("reject: ") and BUDGET_REASON in text, text


def test_zip_views_have_own_bounds_in_exim(user, zips):
    """evil.exe only in a local header behind 10,000 members, or only in the
    central directory: 550 either way; 20,001 members: unscannable."""
    e, out = _exim(_conf(""))
    with e:
        for name in ("local_only", "central_only"):
            with pytest.raises(smtplib.SMTPDataError) as ei:
                hmtest.send(e.smtp_port, "m@example.org", [f"{user.name}@home.com.bo"],
                            open(zips[name], "rb").read())
            assert ei.value.smtp_code == 550, name
            assert b'"evil.exe"' in ei.value.smtp_error, (name, ei.value.smtp_error)
        hmtest.send(e.smtp_port, "m@example.org", [f"{user.name}@home.com.bo"],
                    open(zips["too_many"], "rb").read())
        (raw,) = _delivered(out, 1)
        assert "rules=unscannable" in _scan_header(raw)[0]
        assert "not fully inspected: too many archive members" in e.mainlog()
    _clean(e)


def _readings_message(params):
    return ("From: m@example.org\nTo: bob@home.com.bo\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n"
            "Subject: names\nMIME-Version: 1.0\n"
            'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhi\n'
            "--b\nContent-Type: application/octet-stream\n"
            "Content-Disposition: attachment" + params + "\n\nMZ\n--b--\n").encode()


def test_every_filename_reading_checked_in_exim(user):
    """filename*0..*7 then filename="evil.exe": the ninth reading is checked
    (rejected as blocked, not only as ambiguous: action_ambiguous = tag);
    likewise a filename after 70 other parameters."""
    secs = "".join(f'; filename*{i}="r{i}"' for i in range(7)) + '; filename*7=".txt"'
    eight = _readings_message(secs + '; filename="evil.exe"')
    many = _readings_message("".join(f"; p{i}=v" for i in range(70)) + '; filename="evil.exe"')
    big = _readings_message("".join(f'; filename*{i}="r{i}"' for i in range(300)) +
                            '; filename="evil.exe"')
    e, out = _exim(_conf("action_ambiguous = tag\n"))
    with e:
        for msg in (eight, many, big):
            with pytest.raises(smtplib.SMTPDataError) as ei:
                hmtest.send(e.smtp_port, "m@example.org", [f"{user.name}@home.com.bo"], msg)
            assert ei.value.smtp_code == 550
            assert b'blocked attachment type .exe (filename "evil.exe")' in ei.value.smtp_error
    _clean(e)
    assert os.listdir(out) == []
