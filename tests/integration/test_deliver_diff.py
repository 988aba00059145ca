"""Delivery-level differential suite (issue 13): every case of
tests/sieve-diff/ (also the 61 `fails: both` ones: the message must still
arrive, and both logs must name the compile error) and the action cases of
tests/deliver-diff/ (d09: sieve_before / sieve_after) are delivered
through dovecot-lda + Pigeonhole and through homemail-deliver, as a test
user, each into a fresh Maildir with a recording sendmail stand-in; folders,
flags and keywords (read back by doveadm), the stored bytes and the sendmail
calls must be equal.  The runner and what is compared: deliverdiff.py.

Verdicts (deliverdiff.classify): a difference must be in
tests/deliver-diff/DEVIATIONS (a README deviation row) or in
tests/deliver-diff/KNOWN (today's bugs, with a reason); a listed case that
agrees now fails too, so the lists shrink as the fixes land.  The summary
(`agree N/M` in total and per case file, one short diff per disagreeing
case) is printed by test_deliver_diff_summary.
"""
import os
import time

import pytest

import deliverdiff
import hmtest

OLD, NEW = deliverdiff.load_cases()
CASES = OLD + NEW
KNOWN = deliverdiff.read_list(os.path.join(deliverdiff.CASE_DIR, "KNOWN"), "KNOWN")
DEVIATIONS = deliverdiff.read_list(os.path.join(deliverdiff.CASE_DIR, "DEVIATIONS"), "DEVIATIONS")


@pytest.fixture(scope="session")
def ws():
    for path in (deliverdiff.LDA, deliverdiff.DOVEADM, deliverdiff.sievediff.FAKETIME_LIB):
        assert os.path.exists(path), f"{path} is missing (tools/deps.d/sievediff.check)"
    assert os.access(deliverdiff.HM_DELIVER, os.X_OK), \
        f"{deliverdiff.HM_DELIVER} is not built yet"
    w = deliverdiff.Workspace(hmtest.make_user(prefix="hmdd"))
    yield w
    w.close()


@pytest.fixture(scope="session")
def outcome(ws):
    """(results, status, seconds) for every case, run once in parallel."""
    t0 = time.monotonic()
    res = deliverdiff.run_all(ws, CASES, workers=3)
    el = time.monotonic() - t0
    return res, deliverdiff.classify(res, KNOWN, DEVIATIONS), el


def test_case_lists():
    """Issue 13: all sieve-diff cases (the refused ones too) and >= 100 new
    action cases;
    KNOWN and DEVIATIONS name real cases and real README rows."""
    assert len(NEW) >= 100, f"only {len(NEW)} new delivery cases"
    assert len(OLD) >= 500, f"only {len(OLD)} sieve-diff cases"
    assert [c.id for c in OLD] == [c.id for c in deliverdiff.sievediff.load_cases()]
    assert sum(1 for c in OLD if c.fails) >= 61, "the `fails: both` cases are left out"
    ids = {c.id for c in CASES}
    rows = deliverdiff.deviation_rows()
    for cid in KNOWN:
        assert cid in ids, f"KNOWN names no case: {cid}"
    for cid, row in DEVIATIONS.items():
        assert cid in ids, f"DEVIATIONS names no case: {cid}"
        assert row.split()[0].isdigit() and int(row.split()[0]) in rows, \
            f"DEVIATIONS {cid}: {row!r} is not a row of README's deviation table"


def test_deliver_diff_summary(outcome, capsys):
    """Prints `agree N/M` (all, and per case file) and every disagreement;
    fails on an unexpected disagreement or a stale list entry."""
    res, st, el = outcome
    text = deliverdiff.summary(CASES, res, st, KNOWN, DEVIATIONS)
    with capsys.disabled():
        print("\n" + text + f"\n{len(CASES)} cases in {el:.1f} s")
    bad = sorted(cid for cid, s in st.items() if s not in ("agree", "deviation", "known"))
    assert not bad, f"{len(bad)} cases: " + ", ".join(f"{c} {st[c]}" for c in bad[:20])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_deliver_diff(case, outcome):
    res, st, _ = outcome
    r = res[case.id]
    s = st[case.id]
    assert s in ("agree", "deviation", "known"), (
        f"{case.id} ({case.src}): {s}"
        + (f" (listed: {KNOWN.get(case.id) or DEVIATIONS.get(case.id)}; it agrees now, "
           "take it out of the list)" if s.startswith("STALE") else "")
        + f"\n--- script:\n{case.script}\n--- diff (- dovecot-lda, + homemail-deliver):\n"
        + r.diff() + "\n" + r.raw)


# ---------------------------------------------------------------------------
# The suite can fail: a broken homemail-deliver and a changed :from are caught.
def test_detects_always_keep(ws, outcome):
    """A homemail-deliver that ignores the script (always keeps) must
    disagree on most cases that agree today."""
    wrap = os.path.join(ws.root, "bin", "always-keep")
    with open(wrap, "w") as f:
        f.write("#!/bin/sh\n# homemail-deliver that always keeps (the script is ignored)\n"
                "for a; do shift; [ \"$skip\" ] && { skip=; continue; }\n"
                "  [ \"$a\" = --sieve ] && { skip=1; set -- \"$@\" --no-sieve; continue; }\n"
                f"  set -- \"$@\" \"$a\"; done\nexec {ws.hm} \"$@\"\n")
    os.chmod(wrap, 0o755)
    res, st, _ = outcome
    sample = [c for c in CASES if st[c.id] == "agree"
              and any(k in c.script for k in ("fileinto", "redirect", "vacation", "addflag",
                                              "setflag", "discard", "reject"))][::5]
    assert len(sample) >= 40
    broken = deliverdiff.run_all(ws, sample, workers=3, hm_binary=wrap)
    caught = [c.id for c in sample if not broken[c.id].agree]
    assert len(caught) >= 0.6 * len(sample), (
        f"always-keep caught on only {len(caught)}/{len(sample)}")


def test_detects_changed_vacation_from(ws):
    """The same vacation case with another :from on the homemail side only
    must disagree, on the reply's From."""
    case = next(c for c in NEW if c.id == "d03-vacation/vac-from-other/plain")
    alt = case.script.replace('"office@home.com.bo"', '"other@home.com.bo"')
    assert alt != case.script
    same = deliverdiff.run_case(ws, case)
    changed = deliverdiff.run_case(ws, case, hm_script=alt)
    assert not changed.agree, changed.diff()
    moved = [(a, b) for a, b in zip(same.hm, changed.hm) if a != b]
    assert len(same.hm) == len(changed.hm) and len(moved) == 1, (same.hm, changed.hm)
    a, b = moved[0]
    assert a.startswith("send vacation") and "From: <office@home.com.bo>" in a, a
    assert b == a.replace("From: <office@home.com.bo>", "From: <other@home.com.bo>"), (a, b)
