# backup/module.mk — homemail-backup and homemail-restore (issue 19).
#
# One Python 3 program (backup/homemail-backup.py) installed under both
# names; the name it runs as picks the role.  The build copies it into
# build/ with the package version filled in, so the harness stages and
# runs it like the C programs.

BACKUP_TOOLS := $(B)/homemail-backup $(B)/homemail-restore

$(BACKUP_TOOLS): backup/homemail-backup.py debian/changelog
	@mkdir -p $(B)
	sed 's/@VERSION@/$(HM_VERSION)/' $< > $@.tmp && chmod 0755 $@.tmp && mv $@.tmp $@

BINS += $(BACKUP_TOOLS)
INSTALL_STEPS += install-backup

install-backup: $(BACKUP_TOOLS)
	install -d -m 0755 $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(BACKUP_TOOLS) $(DESTDIR)$(PREFIX)/sbin/
