"""Backups on the running lab (issue 19, role backup): the nightly cron entry
and a running cron daemon, the settings from the inventory, and a backup run
now that writes result=ok into the state file homemail-status reads; the
backup carries Roundcube's database (dbconfig-common's SQLite file), and
`homemail-restore roundcube` puts it back as it was (a table added after the
backup is gone, every row the same, owner and mode kept)."""
import json
import os
import sqlite3
import subprocess
import time

CONF = "/etc/homemail/backup.conf"
STATE = "/var/lib/homemail/backup/last.json"
ROUNDCUBE_DB = "/var/lib/dbconfig-common/sqlite3/roundcube/roundcube"


def test_nightly_cron_entry_and_daemon():
    with open("/etc/cron.d/homemail-backup") as f:
        text = f.read()
    assert "/usr/sbin/homemail-backup -c /etc/homemail/backup.conf" in text, text
    r = subprocess.run(["pgrep", "-x", "cron"], capture_output=True)
    assert r.returncode == 0, "cron is not running"


def test_settings_from_the_inventory():
    conf = dict(line.split(" = ", 1) for line in open(CONF).read().splitlines()
                if " = " in line and not line.startswith("#"))
    assert conf["keep_daily"] == "7" and conf["users"].split() == ["roberto", "maria"], conf
    st = os.stat(conf["passphrase_file"])
    assert st.st_uid == 0 and st.st_mode & 0o077 == 0, oct(st.st_mode)
    assert os.path.exists(os.path.join(conf["repository"], "config"))


def test_backup_now_writes_ok_state():
    t0 = time.time()
    r = subprocess.run(["homemail-backup", "-c", CONF], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with open(STATE) as f:
        state = json.load(f)
    assert state["result"] == "ok" and state["size"] > 0 and state["time"] >= int(t0), state
    assert state["users"] >= 1 and "mailbox(es)" in state["message"], state  # roberto has the round trip
    r = subprocess.run(["homemail-backup", "-c", CONF, "--list"], capture_output=True, text=True)
    assert r.returncode == 0 and state["archive"] in r.stdout.split(), r


def _dump(path):
    c = sqlite3.connect("file:" + path + "?mode=ro", uri=True, timeout=30)
    try:
        return list(c.iterdump())
    finally:
        c.close()


def test_roundcube_database_backed_up_and_restored():
    r = subprocess.run(["homemail-backup", "-c", CONF], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with open(STATE) as f:
        state = json.load(f)
    assert state["result"] == "ok" and "roundcube database" in state["message"], state
    before, st = _dump(ROUNDCUBE_DB), os.stat(ROUNDCUBE_DB)
    assert any("CREATE TABLE users" in line or 'CREATE TABLE "users"' in line
               for line in before), before[:5]            # Roundcube's schema
    c = sqlite3.connect(ROUNDCUBE_DB, timeout=30)
    c.execute("CREATE TABLE homemail_lab_probe (x)")
    c.commit()
    c.close()
    assert _dump(ROUNDCUBE_DB) != before
    r = subprocess.run(["homemail-restore", "-c", CONF, "roundcube"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert _dump(ROUNDCUBE_DB) == before
    after = os.stat(ROUNDCUBE_DB)
    assert (after.st_uid, after.st_gid, after.st_mode) == (st.st_uid, st.st_gid, st.st_mode)
