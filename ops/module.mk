# ops/module.mk — the operations tools (Python 3, standard library only).
#   build/homemail-status   health checks of a live host (docs/operations.md)
#   build/homemail-report   the daily report mailed to the postmaster
# The scripts carry the package version (debian/changelog) for --version
# and the directory of the shared module homemail_admin.py
# (lib/python/module.mk), which they import; a syntax error fails the
# build, not the first cron run.

OPS_TOOLS := $(B)/homemail-status $(B)/homemail-report
BINS += $(OPS_TOOLS)
INSTALL_STEPS += install-ops

$(OPS_TOOLS): $(B)/homemail-%: ops/homemail-%.py debian/changelog | $(B)/homemail_admin.py
	@mkdir -p $(dir $@)
	sed -e 's/@VERSION@/$(HM_VERSION)/' -e 's|@PYTHONDIR@|$(HM_PYTHONDIR)|' $< > $@.tmp
	$(PYTHON) -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' $@.tmp
	chmod 0755 $@.tmp
	mv $@.tmp $@

install-ops: $(OPS_TOOLS) install-pylib
	install -D -m 0755 $(B)/homemail-status $(DESTDIR)$(PREFIX)/sbin/homemail-status
	install -D -m 0755 $(B)/homemail-report $(DESTDIR)$(PREFIX)/sbin/homemail-report
