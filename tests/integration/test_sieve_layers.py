"""test_sieve_layers.py — the Sieve engine's files depend on each other one
way only (issue 20, "The Sieve engine's knot").

tools/sieve-layers reads the engine's object files with nm and prints the
file dependency graph; it fails on any circle, and on a core file other
than the registry (sv_registry.c) that depends on an extension (ext_*.c).
  * the engine as built passes (no circle, no core->extension edge);
  * the checker itself finds a planted circle and a planted breach, and
    passes a planted one-way graph: a checker that reports nothing proves
    nothing.
"""
import os
import subprocess
import textwrap

import hmtest

TOP = hmtest.TOP
CHECKER = os.path.join(TOP, "tools", "sieve-layers")
OBJDIR = os.path.join(hmtest.BUILD_TREE, "obj", "deliver-helper", "sieve")


def run_checker(objdir):
    return subprocess.run([CHECKER, objdir], capture_output=True, text=True,
                          timeout=120)


def test_engine_has_no_circle_and_no_core_to_extension_edge():
    assert os.path.isfile(os.path.join(OBJDIR, "sv_interp.o")), \
        f"no engine objects in {OBJDIR}"
    p = run_checker(OBJDIR)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "0 circle(s), 0 core->extension edge(s)" in p.stdout
    # the graph names every engine file, the CLI is left out
    graph = dict(line.split(" -> ", 1) for line in p.stdout.splitlines()
                 if " -> " in line)
    assert "sv_error" in graph and "sv_interp" in graph
    assert "homemail-sieve" not in graph
    # the bottom layer depends on nothing
    assert graph["sv_error"] == "(nothing)"


def _plant(tmp_path, files):
    """Compile files {name: C text} into tmp_path/name.o."""
    for name, text in files.items():
        src = tmp_path / f"{name}.c"
        src.write_text(textwrap.dedent(text))
        subprocess.run(["cc", "-c", "-o", str(tmp_path / f"{name}.o"), str(src)],
                       check=True, timeout=60)


def test_checker_finds_a_planted_circle(tmp_path):
    _plant(tmp_path, {
        "sv_a": "int b(void); int a(void) { return b(); }\n",
        "sv_b": "int c(void); int b(void) { return c(); }\n",
        "sv_c": "int a(void); int c(void) { return a(); }\n",
    })
    p = run_checker(str(tmp_path))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "circle: sv_a sv_b sv_c" in p.stdout


def test_checker_finds_a_core_file_depending_on_an_extension(tmp_path):
    _plant(tmp_path, {
        "sv_interp": "int ext_hook(void); int run(void) { return ext_hook(); }\n",
        "ext_x": "int ext_hook(void) { return 1; }\n",
        # the registry may name extensions
        "sv_registry": "int ext_hook(void); int (*const hook)(void) = ext_hook;\n",
    })
    p = run_checker(str(tmp_path))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "breach: core sv_interp depends on extension ext_x" in p.stdout
    assert "breach: core sv_registry" not in p.stdout
    assert "0 circle(s)" in p.stdout


def test_checker_passes_a_one_way_graph(tmp_path):
    _plant(tmp_path, {
        "sv_error": "int err(void) { return -1; }\n",
        "sv_interp": "int err(void); int run(void) { return err(); }\n",
        "ext_x": "int run(void); int x(void) { return run(); }\n",
    })
    p = run_checker(str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ext_x -> sv_interp" in p.stdout
    assert "sv_interp -> sv_error" in p.stdout
