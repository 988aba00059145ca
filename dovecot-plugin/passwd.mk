# dovecot-plugin/passwd.mk — homemail-passwd, the privileged helper behind
# the webmail's password form (docs/domains.md, "Password changes").
# Included by dovecot-plugin/module.mk.  Installed mode 0755: the playbook
# makes it setuid root for the web server's group with dpkg-statoverride,
# so the package itself ships no setuid file.

HOMEMAIL_PASSWD := $(B)/homemail-passwd

$(HOMEMAIL_PASSWD): $(B)/obj/dovecot-plugin/homemail-passwd.o $(LIBHM)
	$(CC) -o $@ $(B)/obj/dovecot-plugin/homemail-passwd.o $(LDFLAGS_EXE) $(LIBHM) -lcrypt -lnettle

BINS += $(HOMEMAIL_PASSWD)
INSTALL_STEPS += install-passwd
.PHONY: install-passwd-data

install-passwd: $(HOMEMAIL_PASSWD) install-passwd-data
	install -d -m 0755 $(DESTDIR)$(PREFIX)/lib/homemail
	install -m 0755 $(HOMEMAIL_PASSWD) $(DESTDIR)$(PREFIX)/lib/homemail/homemail-passwd

# the Roundcube driver and plugin (debian/rules packs these too)
install-passwd-data:
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/homemail/roundcube
	install -m 0644 conf/roundcube/homemail.php $(DESTDIR)$(PREFIX)/share/homemail/roundcube/homemail.php
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/homemail/roundcube/homemail_pwexpire
	install -m 0644 conf/roundcube/homemail_pwexpire/homemail_pwexpire.php \
	  $(DESTDIR)$(PREFIX)/share/homemail/roundcube/homemail_pwexpire/homemail_pwexpire.php
