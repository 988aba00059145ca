"""spawntime.py — run build/bench/spawntime from the benchmark scripts.

run(cmds, n, stdin=None, uid=None, gid=None) times each command (a list of
argv lists) n times, interleaved, each as a fresh process started by a small
C program (no Python fork cost in the figures), and returns one dict per
command: wall_ms and cpu_ms (medians), minflt (mean), failures.
"""
import os
import subprocess

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPAWNTIME = os.path.join(TOP, "build", "bench", "spawntime")


def ensure_built():
    if not os.access(SPAWNTIME, os.X_OK):
        subprocess.run(["make", "-C", TOP, "-s", SPAWNTIME[len(TOP) + 1:]], check=True)


def run(cmds, n, stdin=None, uid=None, gid=None, warm=True, env=None):
    ensure_built()
    argv = [SPAWNTIME, "-n", str(n)]
    if stdin:
        argv += ["-i", stdin]
    if uid is not None:
        argv += ["-u", str(uid)]
    if gid is not None:
        argv += ["-g", str(gid)]
    if warm:
        argv.append("-w")
    argv.append("--")
    for i, c in enumerate(cmds):
        if i:
            argv.append(":::")
        argv += c
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env).stdout
    res = []
    for line in out.splitlines():
        d = dict(kv.split("=", 1) for kv in line.split())
        res.append({"wall_ms": float(d["wall_ms"]), "cpu_ms": float(d["cpu_ms"]),
                    "minflt": int(d["minflt"]), "failures": int(d["failures"]),
                    "runs": int(d["runs"])})
    return res
