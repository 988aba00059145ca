"""hm_world.py — a private piece of "outside world" for tests that need one.

Exim's dnslookup router ignores loopback targets, TLSA is looked up per port
(25), and Exim, libspf2 and libopendmarc ask the resolvers of
/etc/resolv.conf, which on this kind of machine is not ours and has no
Internet behind it.  A test that needs other hosts and DNS builds a World:

  * a bridge in the root namespace with 198.18.N.1/24 (RFC 2544's benchmark
    range; N is a slot claimed with a lock file, so concurrent runs differ);
  * one network namespace per host, on that bridge, with its own address
    198.18.N.(10+i) and its own /etc/resolv.conf (`ip netns exec` bind-mounts
    /etc/netns/<ns>/resolv.conf) naming the world's DNS server;
  * optionally a bind9 (`named`) in its own namespace at 198.18.N.2:53,
    authoritative for the zones the test gives, refusing everything else at
    once (so nothing waits on a timeout).

Processes run in a host with host.run()/host.popen(); daemons of the harness
(hmtest.Exim, PackageExim) run in one when given `host=`.  Everything is
removed at close() (and at exit, by hmtest's cleanups).  Traffic stays on
the bridge and in the namespaces this module created (the network rule).
"""
import fcntl
import grp
import os
import shutil
import signal
import subprocess
import time

import hmtest

SLOT_DIR = os.path.join(hmtest.BASE, "world-slots")
NETNS_ETC = "/etc/netns"


def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


class Host:
    """One network namespace of a World: name, ns (netns name), addr."""

    def __init__(self, world, name, ns, addr):
        self.world, self.name, self.ns, self.addr = world, name, ns, addr

    def argv(self, argv):
        return ["ip", "netns", "exec", self.ns] + list(argv)

    def run(self, argv, **kw):
        kw.setdefault("capture_output", True)
        return subprocess.run(self.argv(argv), **kw)

    def popen(self, argv, **kw):
        return subprocess.Popen(self.argv(argv), **kw)

    def set_resolver(self, addr, options="trust-ad"):
        """/etc/resolv.conf as the processes of this host see it."""
        d = os.path.join(NETNS_ETC, self.ns)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write(f"nameserver {addr}\noptions {options} attempts:1 timeout:2\n")
        os.chmod(os.path.join(d, "resolv.conf"), 0o644)


def zone_text(origin, records, ns_addr, serial=None):
    """A complete zone file: SOA and NS boilerplate (the NS is ns.<origin>
    at ns_addr) and the given record lines (relative or absolute names)."""
    serial = serial or int(time.time())
    head = (f"$ORIGIN {origin.rstrip('.')}.\n$TTL 60\n"
            f"@ IN SOA ns hostmaster {serial} 3600 600 86400 60\n"
            f"@ IN NS ns\nns IN A {ns_addr}\n")
    return head + "".join(r.rstrip("\n") + "\n" for r in records)


NAMED_CONF = """\
options {{
  directory "{w}";
  pid-file "{w}/named.pid";
  listen-on port 53 {{ {addr}; 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  allow-query {{ any; }};
  dnssec-validation no;
  notify no;
}};
controls {{ }};
logging {{
  channel main {{ file "{w}/named.log"; severity info; print-time yes; }};
  category default {{ main; }};
  category queries {{ main; }};
}};
{zones}
"""


class World:
    """Namespaces on a private bridge, and optionally a DNS server; see the
    module docstring.  Use as a context manager or call close()."""

    def __init__(self):
        os.makedirs(SLOT_DIR, exist_ok=True)
        self.slot, self._lock = self._claim()
        self.prefix = f"198.18.{self.slot}"
        self.bridge = f"hmwb{self.slot}"
        self.hosts = {}
        self.named = None
        self.dns_addr = None
        self.zones = {}
        self.w = hmtest._workdir(f"world{self.slot}")
        self._closed = False
        self._remove_stale()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.prefix}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        hmtest._cleanups.append(self.close)

    # -- slots and leftovers -------------------------------------------------
    def _claim(self):
        for n in range(1, 250):
            f = open(os.path.join(SLOT_DIR, f"{n}.lock"), "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return n, f
            except OSError:
                f.close()
        raise RuntimeError("no free world slot (250 in use)")

    def _remove_stale(self):
        """A run killed before close() may have left this slot's namespaces,
        bridge and resolv.conf dirs behind; the slot lock says they are ours."""
        tag = f"hmw{self.slot}-"
        r = _ip("netns", "list", check=False)
        for line in r.stdout.splitlines():
            ns = line.split()[0] if line.split() else ""
            if ns.startswith(tag):
                self._kill_ns(ns)
                _ip("netns", "del", ns, check=False)
                shutil.rmtree(os.path.join(NETNS_ETC, ns), ignore_errors=True)
        self._del_veths()
        _ip("link", "del", self.bridge, check=False)

    def _del_veths(self):
        """This slot's veth ends in the root namespace.  A namespace can
        outlive `ip netns del` when a process in another mount namespace
        (any `unshare -m` started while it was mounted) still holds a copy
        of its /run/netns mount; its veth pair then stays and the next
        add_host of that index fails with "File exists".  Deleting our end
        deletes the pair."""
        r = _ip("-o", "link", "show", check=False)
        for line in r.stdout.splitlines():
            parts = line.split(":")
            name = parts[1].strip().split("@")[0] if len(parts) > 1 else ""
            if name.startswith(f"hmw{self.slot}x"):
                _ip("link", "del", name, check=False)

    @staticmethod
    def _kill_ns(ns):
        r = _ip("netns", "pids", ns, check=False)
        for p in r.stdout.split():
            try:
                os.kill(int(p), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    # -- hosts ----------------------------------------------------------------
    def add_host(self, name, addr_index=None):
        """A new namespace on the bridge; returns its Host.  Its resolver is
        the world's DNS server once one runs (127.0.0.1 until then)."""
        i = addr_index if addr_index is not None else 10 + len(self.hosts)
        if not 2 <= i <= 254:
            raise ValueError("address index out of range")
        ns = f"hmw{self.slot}-{name}"
        veth_out, veth_in = f"hmw{self.slot}x{i}", f"hmw{self.slot}y{i}"
        addr = f"{self.prefix}.{i}"
        _ip("netns", "add", ns)
        _ip("link", "add", veth_out, "type", "veth", "peer", "name", veth_in)
        _ip("link", "set", veth_in, "netns", ns)
        _ip("link", "set", veth_out, "master", self.bridge)
        _ip("link", "set", veth_out, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "set", veth_in, "name", "eth0")
        _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        h = Host(self, name, ns, addr)
        h.set_resolver(self.dns_addr or "127.0.0.1")
        self.hosts[name] = h
        return h

    # -- DNS ------------------------------------------------------------------
    def start_dns(self, zones):
        """bind9 at 198.18.N.2:53, authoritative for zones ({origin: list of
        record lines}); every host (present and future) resolves through it."""
        h = self.add_host("dns", addr_index=2)
        self.dns_addr = h.addr
        self._dns_host = h
        os.chown(self.w, 0, grp.getgrnam("bind").gr_gid)   # named -u bind writes here
        os.chmod(self.w, 0o775)
        for origin, records in zones.items():
            self.zones[origin.rstrip(".")] = list(records)
        self._write_named_conf()
        log = open(os.path.join(self.w, "named.stderr"), "w")
        self.named = h.popen(["named", "-f", "-u", "bind", "-c",
                              os.path.join(self.w, "named.conf")],
                             stdout=log, stderr=subprocess.STDOUT)
        for other in self.hosts.values():
            other.set_resolver(self.dns_addr)
        first = next(iter(self.zones), None)
        if first:
            hmtest.wait_for(lambda: self._answers(first), 20, 0.1, "named to answer")
        return h

    def set_zone(self, origin, records):
        """Replace (or add) a zone's records and reload named (SIGHUP)."""
        self.zones[origin.rstrip(".")] = list(records)
        self._write_named_conf()
        before = self._serial(origin)
        self.named.send_signal(signal.SIGHUP)
        hmtest.wait_for(lambda: self._serial(origin) not in (None, before), 20, 0.1,
                        f"named to load the new {origin}")

    def _write_named_conf(self):
        zones = ""
        for origin, records in self.zones.items():
            path = os.path.join(self.w, f"db.{origin}")
            serial = int(time.time() * 1000) % 4000000000
            with open(path, "w") as f:
                f.write(zone_text(origin, records, self.dns_addr, serial))
            os.chmod(path, 0o644)
            zones += f'zone "{origin}" {{ type primary; file "{path}"; }};\n'
        with open(os.path.join(self.w, "named.conf"), "w") as f:
            f.write(NAMED_CONF.format(w=self.w, addr=self.dns_addr, zones=zones))

    def dig(self, name, rtype="A", short=True):
        """Ask the world's DNS server from the root namespace."""
        argv = ["dig", "+tries=1", "+time=2", f"@{self.dns_addr}", name, rtype]
        if short:
            argv.insert(1, "+short")
        return subprocess.run(argv, capture_output=True, text=True).stdout

    def _answers(self, origin):
        return "SOA" in subprocess.run(
            ["dig", "+tries=1", "+time=1", f"@{self.dns_addr}", origin, "SOA"],
            capture_output=True, text=True).stdout

    def _serial(self, origin):
        out = self.dig(origin, "SOA").split()
        return out[2] if len(out) > 2 else None

    # -- teardown -------------------------------------------------------------
    def close(self):
        if self._closed:
            return
        self._closed = True
        if self.named is not None:
            hmtest._terminate(self.named)
        for h in list(self.hosts.values()):
            self._kill_ns(h.ns)
            _ip("netns", "del", h.ns, check=False)
            shutil.rmtree(os.path.join(NETNS_ETC, h.ns), ignore_errors=True)
        self._del_veths()
        _ip("link", "del", self.bridge, check=False)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

