"""Differential Sieve suite: every case in tests/sieve-diff/*.cases is run
through Pigeonhole's sieve-test (the live reference) and through
`build/homemail-sieve test`; the normalised outcomes must be equal.

The runner and every normalisation rule live in sievediff.py (and
docs/sieve-testing.md).  sieve-test is run once per case for the whole
session, in parallel, before the first comparison; homemail-sieve is run
per test.  One pytest case per Sieve case, named by its id
(file/group/label), so `make check TESTS=sieve` lists each disagreement.
"""
import os

import pytest

import sievediff

CASES = sievediff.load_cases()


def test_corpus_size():
    """Issue 3 asks for at least 300 cases."""
    assert len(CASES) >= 300, f"only {len(CASES)} differential cases"


@pytest.fixture(scope="session")
def reference():
    """sieve-test outcome of every case: {id: (case_dir, RefResult)}."""
    for path in (sievediff.SIEVE_TEST, sievediff.FAKETIME_LIB):
        assert os.path.exists(path), (
            f"{path} is missing (packages dovecot-sieve, libfaketime: "
            "tools/deps.d/sievediff.check)")
    ws = sievediff.Workspace()
    try:
        yield sievediff.run_all_reference(ws, CASES, workers=4)
    finally:
        ws.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sieve_diff(case, reference):
    d, ref = reference[case.id]
    assert ref.ok is not None, f"{case.src}: {ref.raw}"
    assert os.access(sievediff.HM_SIEVE, os.X_OK), \
        f"{sievediff.HM_SIEVE} is not built yet (make build-all)"
    hm = sievediff.run_hm(d, case)
    msg = sievediff.compare(case, ref, hm)
    assert msg is None, f"{case.id} ({case.src})\n--- script:\n{case.script}\n{msg}"
