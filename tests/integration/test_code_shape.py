"""test_code_shape.py — no function in deliver-helper/ longer than 120 lines (issue 20).

tools/fnlen counts each C function from its signature to its closing brace
at column 0; a function past 120 lines reads as several steps run together
and is split into named stages instead.  The second test keeps the counter
itself honest: a planted 121-line function is found, a 120-line one is not.
"""
import os
import subprocess

import hmtest

FNLEN = os.path.join(hmtest.TOP, "tools", "fnlen")
MAX_LINES = 120


def test_no_function_in_deliver_helper_over_120_lines():
    # the count must see the tree at all (a renamed directory or a layout
    # fnlen cannot read would otherwise pass with nothing listed)
    every = subprocess.run([FNLEN, os.path.join(hmtest.TOP, "deliver-helper")],
                           capture_output=True, text=True, timeout=60)
    names = [line.split()[-1] for line in every.stdout.splitlines()]
    assert every.returncode == 0 and len(names) > 100 and "main" in names \
        and "deliver_filter" in names, every.stdout[-500:] + every.stderr
    p = subprocess.run([FNLEN, "--max", str(MAX_LINES),
                        os.path.join(hmtest.TOP, "deliver-helper")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == "", \
        "functions longer than %d lines:\n%s%s" % (MAX_LINES, p.stdout, p.stderr)


def _planted(path, body_lines):
    # two signature lines + "{" + body + "}" = body_lines + 4 lines
    with open(path, "w") as f:
        f.write("/* lead */\nstatic int\nplanted(int x)\n{\n")
        f.write("\tx++;\n" * body_lines)
        f.write("}\n\nstatic const int tbl[] = {\n\t1,\n};\n")


def test_fnlen_counts_signature_to_closing_brace(tmp_path):
    src = tmp_path / "planted.c"
    _planted(src, MAX_LINES - 4)          # exactly 120 lines
    p = subprocess.run([FNLEN, str(src)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0
    assert p.stdout.split() == [str(MAX_LINES), "%s:2" % src, "planted"]
    p = subprocess.run([FNLEN, "--max", str(MAX_LINES), str(src)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == ""
    _planted(src, MAX_LINES - 3)          # 121 lines
    p = subprocess.run([FNLEN, "--max", str(MAX_LINES), str(src)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "planted" in p.stdout
