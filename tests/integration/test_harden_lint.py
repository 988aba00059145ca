"""test_harden_lint.py — the analysis machinery of tools/lint itself (issue 8).

`make lint` (tools/lint) is the full run: cppcheck, clang-tidy and valgrind
over the whole tree, minutes long.  These tests keep its parts honest in
`make check`, in seconds:
  * the memcheck runner of tools/lint_valgrind.py reports a definite leak,
    an invalid write and a jump on uninitialised memory in a planted program,
    and a clean program as clean (a runner that reports nothing proves
    nothing);
  * a run whose exit code is not the expected one is a finding, so a CLI that
    refused its input cannot pass as "no valgrind errors";
  * every line of tools/lint.suppress carries its reason;
  * the homemail-user part of the valgrind stage on the plain build: all its
    runs clean (the whole stage is `tools/lint valgrind`).
"""
import os
import re
import subprocess
import sys

import pytest

import hmtest

TOP = hmtest.TOP
sys.path.insert(0, os.path.join(TOP, "tools"))
import lint_valgrind  # noqa: E402

PLANTED = r"""
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "clean";
	char *p = malloc(16);
	if (!p)
		return 1;
	memset(p, 'x', 16);
	if (strcmp(mode, "invalid") == 0)
		p[16] = 1;                       /* one past the block */
	if (strcmp(mode, "uninit") == 0) {
		char *q = malloc(4);
		int r = q && q[2] == 'y';        /* q[2] never written */
		free(q);
		if (r)
			p[0] = 'y';
	}
	if (strcmp(mode, "exit3") == 0) {
		free(p);
		return 3;
	}
	if (strcmp(mode, "leak") != 0)
		free(p);
	return 0;
}
"""


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    d = tmp_path_factory.mktemp("lint")
    src = d / "planted.c"
    src.write_text(PLANTED)
    exe = d / "planted"
    subprocess.run(["cc", "-g", "-O0", "-o", str(exe), str(src)], check=True)
    return d, str(exe)


@pytest.mark.skipif(hmtest.SANITIZE, reason="valgrind runs plain builds: checked in the plain pass")
@pytest.mark.parametrize("mode,want", [
    ("clean", None),
    ("leak", r"16 bytes in 1 blocks are definitely lost"),
    ("invalid", r"Invalid write of size 1"),
    ("uninit", r"Conditional jump or move depends on uninitialised"),
    ("exit3", r"exit 3, expected 0"),
])
def test_memcheck_runner_reports_planted_bugs(planted, tmp_path, mode, want):
    _d, exe = planted
    run = lint_valgrind.Run("planted", mode, [exe, mode], ok_rc=(0,))
    # a log dir of this case's own: no two modes share a log file
    _run, problems, log = lint_valgrind.execute(run, str(tmp_path), 1)
    if want is None:
        assert problems == [], log
    else:
        assert problems, f"{mode}: nothing reported\n{log}"
        assert re.search(want, " ".join(problems)), (problems, log)


def test_suppressions_carry_reasons():
    lines = open(os.path.join(TOP, "tools", "lint.suppress"), encoding="utf-8").read().splitlines()
    entries = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    assert entries, "tools/lint.suppress lists nothing (then delete the machinery, not this test)"
    for ln in entries:
        assert re.match(r"^\S+\s+[^\s#]+\s+#\s*\S.{10,}", ln), f"no reason given: {ln}"


@pytest.mark.skipif(hmtest.SANITIZE, reason="valgrind cannot run ASan binaries: checked in the plain pass")
def test_valgrind_stage_user_cli_clean(tmp_path):
    build = os.path.join(TOP, "build")
    assert os.access(os.path.join(build, "homemail-user"), os.X_OK), "build/homemail-user not built"
    p = subprocess.run(["/usr/bin/python3", os.path.join(TOP, "tools", "lint_valgrind.py"), build,
                        str(tmp_path / "logs"), "--only", "user", "--jobs", "2"],
                       capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    m = re.search(r"valgrind: (\d+) finding\(s\) in (\d+) memcheck run\(s\)", out)
    assert m, out
    assert int(m.group(2)) >= 20, out          # every command of the sequence ran
    assert int(m.group(1)) == 0 and p.returncode == 0, out
