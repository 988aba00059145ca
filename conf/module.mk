# conf/ — homemail's conf.d snippets for exim4 and dovecot (Debian conventions).
# `make install` (and the Debian package) puts them under /etc; the include
# files in /usr/share/homemail come only with the module they enable, so a
# system without that module keeps the stock behaviour.

CONF_EXIM_FILES := $(shell cd conf/exim4/conf.d 2>/dev/null && find . -type f | sort)
CONF_DOVECOT_FILES := $(wildcard conf/dovecot/conf.d/*.conf)

INSTALL_STEPS += install-conf

install-conf:
	@set -e; for f in $(CONF_EXIM_FILES); do \
	  install -D -m 0644 conf/exim4/conf.d/$$f $(DESTDIR)/etc/exim4/conf.d/$$f; done
	install -d $(DESTDIR)/etc/dovecot/conf.d
	install -m 0644 $(CONF_DOVECOT_FILES) $(DESTDIR)/etc/dovecot/conf.d/
	install -d $(DESTDIR)$(PREFIX)/share/homemail/exim4 $(DESTDIR)$(PREFIX)/share/homemail/dovecot
	if [ -f $(B)/homemail_scan.so ]; then \
	  install -m 0644 conf/share/exim4/local_scan.conf $(DESTDIR)$(PREFIX)/share/homemail/exim4/; fi
	if [ -f $(B)/homemail_scan.so ]; then \
	  install -m 0644 conf/share/exim4/vdomains-routers.conf conf/share/exim4/vdomains-transport.conf \
	    conf/share/exim4/vdomains-system-router.conf \
	    $(DESTDIR)$(PREFIX)/share/homemail/exim4/; fi
	if [ -f $(B)/libauthdb_homemail.so ]; then \
	  install -m 0644 conf/share/dovecot/auth-homemail.conf.ext $(DESTDIR)$(PREFIX)/share/homemail/dovecot/; fi
	if [ -f $(B)/lib90_homemail_junk_plugin.so ]; then \
	  install -m 0644 conf/share/dovecot/junk.conf.ext $(DESTDIR)$(PREFIX)/share/homemail/dovecot/; fi

.PHONY: install-conf
