#!/usr/bin/python3
"""homemail-report — the daily report mailed to the postmaster.

What for: one short plain-text summary of a day, narrow enough for a phone:
  messages received, delivered here, sent out, bounced and deferred;
  refusals by reason (unknown recipient, MIME policy, spam, virus,
  SPF/DKIM/DMARC, relay, authentication, other); top senders and recipients
  by volume; logins (IMAP/POP3/ManageSieve and SMTP AUTH), failed logins and
  lockouts; users over their quota warning level.
Relies on: the logs Exim and Dovecot already write (Exim's mainlog, rotated
  .1 and .N.gz included; Dovecot's log file), Debian's `eximstats` for the
  totals and the top lists (its own parser of Exim's log), and `doveadm
  quota get -A` for the quota line.  Settings it shares with homemail-status
  come from /etc/homemail/status.conf (homemail-status(8)); the config
  reader, exit codes and log readers from homemail_admin.py, shared with
  homemail-status and homemail-backup.
How it fails: a log it cannot read is named in the report (the day's
  numbers would be wrong without it) and makes the exit status 1; usage
  errors exit 64, a bad configuration 78.
"""
import datetime
import os
import re
import subprocess
import sys
import tempfile

# The shared module (homemail_admin.py): beside this file in build/, else
# the package's private directory; no byte-code caches left behind.
sys.dont_write_bytecode = True
sys.path[:0] = [os.path.dirname(os.path.realpath(__file__)), "@PYTHONDIR@"]
import homemail_admin as hm  # noqa: E402

PROG = "homemail-report"
VERSION = "@VERSION@"

USAGE = f"""\
usage: {PROG} [--config FILE] [--day YYYY-MM-DD|today|yesterday] [--top N]
       [--exim-log FILE]... [--dovecot-log FILE]... [--mail]
       {PROG} --help | --version

Prints the day's mail report (default: yesterday), or mails it to the
postmaster with --mail (the daily cron job).  Without --exim-log and
--dovecot-log it reads Exim's mainlog and Dovecot's log, rotated copies too.

  --config FILE   settings shared with homemail-status (/etc/homemail/status.conf)
  --day DAY       the day to report on (local time)
  --top N         length of the top senders/recipients lists (default 5)
"""

CONF_KEYS = {"exim": "exim4", "exim_config": "", "dovecot_log": "/var/log/dovecot.log",
             "doveadm": "doveadm", "dovecot_config": "", "domains": "", "hostname": "",
             "quota_warn": "90", "postmaster": "postmaster", "sendmail": "/usr/sbin/sendmail"}

# Refusal reasons: the first pattern that matches a rejection line wins.
# Spam, virus and SPF/DKIM/DMARC name the words the DATA ACL sections and
# homemail_scan.so put in their messages (docs/operations.md).
REFUSALS = hm.patterns([
    ("unknown recipient", r"rejected RCPT .*(unknown user|Unrouteable address|"
                          r"unknown local-part|User unknown)"),
    ("virus", r"malware|virus"),
    ("spam", r"spam"),
    ("SPF/DKIM/DMARC", r"\bSPF\b|\bDMARC\b|\bDKIM\b"),
    ("MIME policy", r"rejected by local_scan\(\)"),
    ("relay denied", r"relay not permitted|relaying denied"),
    ("authentication required", r"authentication required"),
    ("protocol / syntax", r"rejected (EHLO|HELO)|syntax|line length|"
                          r"synchronization error|too many"),
])
DEFERS = hm.patterns([
    ("connection refused", r"Connection refused"),
    ("timeout", r"timed out|timeout"),
    ("DNS", r"host lookup did not complete|DNS"),
    ("over quota", r"quota|mailbox is full"),
    ("remote 4xx", r"SMTP error .*: 4\d\d"),
    ("local delivery", r"T=homemail|returned 75|temporary"),
])


def run(argv, timeout=60):
    """(returncode, stdout, stderr); a program that cannot be started at all
    is a failed run (127), as one that is missing."""
    try:
        return hm.run(argv, timeout)
    except OSError as ex:
        return 127, "", str(ex)


def rotated(path):
    """path and its rotated copies that may hold yesterday (.1, .2.gz)."""
    return [p for p in (path + ".2.gz", path + ".1", path) if os.path.exists(p)]


def readable_logs(paths, missing):
    """The text of each log of paths that can be read (gunzipped); the
    others are appended to missing (the report names them)."""
    for p in paths:
        text = hm.read_log(p)
        if text is None:
            missing.append(p)
        else:
            yield text


def exim_argv(cfg, *args):
    return hm.with_config(cfg["exim"], "-C", cfg["exim_config"], *args)


def default_exim_log(cfg):
    rc, out, _ = run(exim_argv(cfg, "-bP", "log_file_path"), timeout=20)
    p = out.split("=", 1)[1].strip() if rc == 0 and "=" in out else ""
    for part in p.split(":"):
        part = part.strip()
        if part and part != "syslog":
            return part.replace("%s", "main")
    return "/var/log/exim4/mainlog"


# ---------------------------------------------------------------------------
class Day:
    """Everything counted for one day."""

    def __init__(self):
        self.received = self.received_auth = 0
        self.delivered_local = self.sent_out = self.bounced = 0
        self.deferred = {}
        self.deferred_msgs = set()
        self.refused = {}
        self.refused_other = {}
        self.sender_bytes, self.sender_msgs = {}, {}
        self.rcpt_bytes, self.rcpt_msgs = {}, {}
        self.logins, self.login_users = {}, set()
        self.login_failed = 0
        self.smtp_auth_failed = 0
        self.lockouts = []
        self.quota_hits = 0
        self.missing_logs = []
        self.eximstats = None


ADDR_RE = re.compile(r"<([^>]*)>")


SCAN_REJECT_RE = re.compile(r"^homemail-scan: (?:reject|tempreject);.*?; rule=(\w+)")


def parse_exim(lines, day, local_domains):
    """Count one day's Exim mainlog lines into day."""
    sizes = {}
    scan_rule = {}       # message id -> rule of homemail_scan.so's refusal
    for ln in lines:
        body = ln[20:]
        f = body.split(" ", 2)
        if len(f) >= 3 and re.fullmatch(r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2,4}", f[0]):
            mid, flag, rest = f
            if flag == "<=":
                sender = rest.split(" ", 1)[0]
                m = re.search(r" S=(\d+)", rest)
                size = int(m.group(1)) if m else 0
                sizes[mid] = size
                day.received += 1
                if " A=" in rest:
                    day.received_auth += 1
                key = sender if sender != "<>" else "<> (bounces)"
                day.sender_bytes[key] = day.sender_bytes.get(key, 0) + size
                day.sender_msgs[key] = day.sender_msgs.get(key, 0) + 1
            elif flag in ("=>", "->", "*>"):
                if mid not in sizes or rest.startswith(":blackhole:"):
                    continue
                m = ADDR_RE.search(rest)
                addr = (m.group(1) if m else rest.split(" ", 1)[0]).lower()
                dom = addr.rpartition("@")[2]
                if dom in local_domains:
                    day.delivered_local += 1
                else:
                    day.sent_out += 1
                day.rcpt_bytes[addr] = day.rcpt_bytes.get(addr, 0) + sizes[mid]
                day.rcpt_msgs[addr] = day.rcpt_msgs.get(addr, 0) + 1
                if re.search(r"quota", rest, re.I):
                    day.quota_hits += 1
            elif flag == "**":
                day.bounced += 1
                if re.search(r"quota|mailbox is full", rest, re.I):
                    day.quota_hits += 1
            elif flag == "==":
                if re.search(r"retry time not reached", rest):
                    continue
                reason = hm.first_match(DEFERS, rest, "other")
                day.deferred[reason] = day.deferred.get(reason, 0) + 1
                day.deferred_msgs.add(mid)
                if reason == "over quota":
                    day.quota_hits += 1
            elif flag == "homemail-scan:":
                m = SCAN_REJECT_RE.match(f"{flag} {rest}")
                if m:
                    scan_rule[mid] = m.group(1)
            elif " rejected " in " " + rest or rest.startswith("rejected "):
                # homemail_scan.so logs its verdict on a line of its own
                # (the DATA ACL or local_scan then refuses with its text)
                count_refusal(day, body, scan_rule.pop(mid, None))
            continue
        if "authenticator failed" in body:
            day.smtp_auth_failed += 1
        elif " rejected " in body:
            count_refusal(day, body)


def count_refusal(day, body, scan_rule=None):
    if "temporarily rejected" in body:     # 4xx: the sender retries
        return
    if scan_rule is not None:
        reason = "SPF/DKIM/DMARC" if scan_rule.lower() in ("dmarc", "spf", "dkim") \
            else "MIME policy"
    else:
        reason = hm.first_match(REFUSALS, body)
    if reason is None:
        reason = "other"
        m = re.search(r"rejected [^:]*: (.*)$", body)
        text = (m.group(1) if m else body)[:40]
        day.refused_other[text] = day.refused_other.get(text, 0) + 1
    day.refused[reason] = day.refused.get(reason, 0) + 1


LOGIN_RE = re.compile(r"(imap|pop3|managesieve)-login: Info: Login: user=<([^>]*)>")
FAILED_RE = re.compile(r"-login: Info: .*\(auth failed, (\d+) attempts")
LOCK_RE = re.compile(r"(\S+) now (user|remote address) locked out for (\d+) s")


def parse_dovecot(lines, day):
    for ln in lines:
        m = LOGIN_RE.search(ln)
        if m:
            day.logins[m.group(1)] = day.logins.get(m.group(1), 0) + 1
            day.login_users.add(m.group(2))
            continue
        m = FAILED_RE.search(ln)
        if m:
            day.login_failed += int(m.group(1))
            continue
        m = LOCK_RE.search(ln)
        if m:
            day.lockouts.append(f"{m.group(1)} ({'address' if m.group(2) != 'user' else 'user'})")
        elif re.search(r"Quota exceeded", ln, re.I):
            day.quota_hits += 1


def dovecot_day_lines(text, d):
    """Dovecot's own log timestamps ('Dec 05 07:39:07') or ISO ones."""
    a = d.strftime("%b %d ")
    b = d.strftime("%Y-%m-%d")
    return [ln for ln in text.splitlines() if ln.startswith(a) or ln.startswith(b)]


def run_eximstats(lines, top):
    """Totals and top lists from Debian's eximstats over the day's lines;
    None when eximstats is missing or says something unexpected."""
    with tempfile.NamedTemporaryFile("w", suffix=".log") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        rc, out, _ = run(["eximstats", f"-t{top}", "-h0", "-q0", "-nr", "-nt", "-byemail",
                          "-nvr", f.name], timeout=120)
    if rc != 0:
        return None
    res = {"received": None, "received_bytes": None, "delivered": None, "delivered_bytes": None,
           "senders": [], "recipients": []}
    m = re.search(r"^\s*Received\s+(\d+)\s+(\d+)", out, re.M)
    if m:
        res["received_bytes"], res["received"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"^\s*Delivered\s+(\d+)\s+(\d+)", out, re.M)
    if m:
        res["delivered_bytes"], res["delivered"] = int(m.group(1)), int(m.group(2))
    for key, title in (("senders", r"sending emails by volume"),
                       ("recipients", r"email destinations by volume")):
        m = re.search(rf"^Top \d+ {title}\n-+\n.*?\n((?:\s+\d.*\n?)*)", out, re.M)
        if m:
            for row in m.group(1).splitlines():
                c = row.split()
                if len(c) >= 4:
                    res[key].append((c[-1], int(c[0]), int(c[-3])))
    return res


def human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return str(n)


def quota_over(cfg):
    """Users at or over quota_warn percent now; None when doveadm cannot say
    (a quota_warn that is no number: none)."""
    rc, out, _ = run(hm.with_config(cfg["doveadm"], "-c", cfg["dovecot_config"],
                                    "-f", "tab", "quota", "get", "-A"), timeout=60)
    if rc != 0:
        return None
    try:
        limit = int(cfg["quota_warn"])
    except ValueError:
        return []
    return hm.quota_users(out, limit)[1]


def render(day, d, host, top, quota):
    w = []
    add = w.append
    add(f"homemail report for {host}")
    add(f"{d.strftime('%a %d %b %Y')}")
    add("")
    es = day.eximstats
    received = es["received"] if es and es["received"] is not None else day.received
    add("MESSAGES")
    add(f"  received      {received:6}" + (f"  {human_bytes(es['received_bytes'])}"
                                            if es and es["received_bytes"] else ""))
    add(f"   by users     {day.received_auth:6}  (SMTP AUTH)")
    add(f"  delivered here{day.delivered_local:6}")
    add(f"  sent out      {day.sent_out:6}")
    add(f"  bounced       {day.bounced:6}")
    add(f"  deferred      {len(day.deferred_msgs):6}  messages")
    if day.deferred:
        add("   attempts by reason:")
    for r, c in sorted(day.deferred.items(), key=lambda x: -x[1]):
        add(f"    {r:<18}{c:4}")
    add("")
    total = sum(day.refused.values())
    add(f"REFUSED       {total:8}")
    for r, c in sorted(day.refused.items(), key=lambda x: (-x[1], x[0])):
        add(f"  {r:<24}{c:6}")
    for t, c in sorted(day.refused_other.items(), key=lambda x: -x[1])[:3]:
        add(f"    {c:4} {t}")
    add("")
    senders = es["senders"] if es and es["senders"] else [
        (a, day.sender_msgs[a], b) for a, b in
        sorted(day.sender_bytes.items(), key=lambda x: -x[1])[:top]]
    recips = sorted(day.rcpt_bytes.items(), key=lambda x: -x[1])[:top]
    add("TOP SENDERS (volume)")
    for a, n, b in senders[:top]:
        add(f"  {a[:34]}")
        add(f"    {n} msgs, {human_bytes(b)}")
    add("TOP RECIPIENTS (volume)")
    for a, b in recips:
        add(f"  {a[:34]}")
        add(f"    {day.rcpt_msgs[a]} msgs, {human_bytes(b)}")
    add("")
    add("LOGINS")
    logins = sum(day.logins.values())
    add(f"  IMAP/POP3/Sieve {logins:5}  ({len(day.login_users)} users)")
    add(f"  failed          {day.login_failed:5}")
    add(f"  SMTP AUTH used  {day.received_auth:5}")
    add(f"  SMTP AUTH failed{day.smtp_auth_failed:5}")
    add(f"  lockouts        {len(day.lockouts):5}")
    locked = {}
    for x in day.lockouts:
        locked[x] = locked.get(x, 0) + 1
    for x, n in sorted(locked.items(), key=lambda i: -i[1])[:10]:
        add(f"    {x[:30]}" + (f" x{n}" if n > 1 else ""))
    add("")
    add("QUOTA")
    add(f"  over-quota events {day.quota_hits:3}")
    if quota is None:
        add("  now: doveadm could not say")
    else:
        add(f"  over the warning level now: {len(quota)}")
        for q in quota[:10]:
            add(f"    {q}")
    if day.missing_logs:
        add("")
        add("LOGS NOT READ (numbers incomplete)")
        for p in day.missing_logs:
            add(f"  {p}")
    return "\n".join(w) + "\n"


def parse_day(text):
    if text == "today":
        return datetime.date.today()
    if text == "yesterday":
        return datetime.date.today() - datetime.timedelta(days=1)
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


def main(argv):
    rc, opts = hm.command_line(
        argv, PROG, VERSION, USAGE,
        {"config": None, "day": "yesterday", "top": "5", "mail": False,
         "exim-log": [], "dovecot-log": []},
        values=("--config", "--day", "--top"), lists=("--exim-log", "--dovecot-log"),
        flags={"--mail": ("mail", True)})
    if rc is not None:
        return rc
    exim_logs, dovecot_logs = opts["exim-log"], opts["dovecot-log"]
    d = parse_day(opts["day"])
    if d is None or not opts["top"].isdigit():
        return hm.usage_error(PROG, "bad --day or --top", USAGE)
    top = int(opts["top"])
    try:
        # the rest of status.conf is homemail-status's
        cfg = hm.read_config(opts["config"] or "/etc/homemail/status.conf", CONF_KEYS,
                             must_exist=opts["config"] is not None, strict=False)
    except hm.ConfigError as ex:
        sys.stderr.write(f"{PROG}: {ex}\n")
        return hm.EX_CONFIG
    host = cfg["hostname"]
    if not host:
        rc, out, _ = run(exim_argv(cfg, "-bP", "primary_hostname"), timeout=20)
        host = out.split("=", 1)[1].strip() if rc == 0 and "=" in out else os.uname().nodename
    domains = {x.lower() for x in cfg["domains"].split()} or {host.partition(".")[2] or host}
    day = Day()
    if not exim_logs:
        exim_logs = rotated(default_exim_log(cfg))
    if not dovecot_logs:
        dovecot_logs = rotated(cfg["dovecot_log"])
    prefix = d.isoformat() + " "
    elines = []
    for text in readable_logs(exim_logs, day.missing_logs):
        elines += [ln for ln in text.splitlines() if ln.startswith(prefix)]
    parse_exim(elines, day, domains)
    if elines:
        day.eximstats = run_eximstats(elines, top)
    for text in readable_logs(dovecot_logs, day.missing_logs):
        parse_dovecot(dovecot_day_lines(text, d), day)
    if not exim_logs:
        day.missing_logs.append("(no Exim main log found)")
    report = render(day, d, host, top, quota_over(cfg))
    if opts["mail"]:
        msg = hm.mail_text(cfg["postmaster"], f"mail report {host} {d.isoformat()}", report)
        try:
            p = subprocess.run([cfg["sendmail"], "-t", "-oi"], input=msg, text=True,
                               capture_output=True, timeout=60)
            if p.returncode != 0:
                sys.stderr.write(f"{PROG}: {cfg['sendmail']}: exit {p.returncode}: "
                                 f"{p.stderr.strip()}\n")
                return hm.EX_TEMPFAIL
        except (OSError, subprocess.TimeoutExpired) as ex:
            sys.stderr.write(f"{PROG}: {cfg['sendmail']}: {ex}\n")
            return hm.EX_TEMPFAIL
    else:
        sys.stdout.write(report)
    return 1 if day.missing_logs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
