# backup/module.mk — homemail-backup and homemail-restore (issue 19).
#
# One Python 3 program (backup/homemail-backup.py) installed under both
# names; the name it runs as picks the role.  The build copies it into
# build/ with the package version filled in, so the harness stages and
# runs it like the C programs; it imports the shared module
# homemail_admin.py (lib/python/module.mk) from beside itself or from
# $(HM_PYTHONDIR), sed'ed in here.

BACKUP_TOOLS := $(B)/homemail-backup $(B)/homemail-restore

$(BACKUP_TOOLS): backup/homemail-backup.py debian/changelog | $(B)/homemail_admin.py
	@mkdir -p $(B)
	sed -e 's/@VERSION@/$(HM_VERSION)/' -e 's|@PYTHONDIR@|$(HM_PYTHONDIR)|' $< > $@.tmp \
	  && chmod 0755 $@.tmp && mv $@.tmp $@

BINS += $(BACKUP_TOOLS)
INSTALL_STEPS += install-backup

install-backup: $(BACKUP_TOOLS) install-pylib
	install -d -m 0755 $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(BACKUP_TOOLS) $(DESTDIR)$(PREFIX)/sbin/
