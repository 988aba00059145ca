"""Backups on the running lab (issue 19, role backup): the nightly cron entry
and a running cron daemon, the settings from the inventory, and a backup run
now that writes result=ok into the state file homemail-status reads."""
import json
import os
import subprocess
import time

CONF = "/etc/homemail/backup.conf"
STATE = "/var/lib/homemail/backup/last.json"


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
