# lib/python/module.mk — homemail_admin.py, the Python module that
# homemail-status, homemail-report and homemail-backup/-restore share
# (configuration reader, exit codes, option and log helpers).
#
#   build/homemail_admin.py   beside the tools, where they look first (the
#                             directory of their own real path); mode 0755
#                             only so that the test harness, which stages
#                             build/'s executables, stages it with them
#   $(HM_PYTHONDIR)           where the package installs it (0644), the
#                             tools' second place to look (sed'ed into them)
# A syntax error fails the build, not the first cron run.

HM_PYLIB     := $(B)/homemail_admin.py
HM_PYTHONDIR := $(PREFIX)/share/homemail/python
INSTALL_STEPS += install-pylib

$(HM_PYLIB): lib/python/homemail_admin.py
	@mkdir -p $(dir $@)
	$(PYTHON) -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' $<
	cp $< $@.tmp
	chmod 0755 $@.tmp
	mv $@.tmp $@

install-pylib: $(HM_PYLIB)
	install -D -m 0644 $(HM_PYLIB) $(DESTDIR)$(HM_PYTHONDIR)/homemail_admin.py
