# dovecot-plugin/module.mk — the Dovecot side of homemail.
#
# Owned by the auth piece (libauthdb_homemail.so, homemail-user); the junk
# piece keeps its rules in dovecot-plugin/junk.mk, included below, and uses
# DOVECOT_MOD_CFLAGS from here.
#
# Dovecot modules must be compiled against the *installed* headers (Debian's
# differ from upstream's) with -DHAVE_CONFIG_H so that config.h from
# /usr/include/dovecot defines the same struct layouts the daemon was built
# with.  The include dir comes from /usr/lib/dovecot/dovecot-config.

DOVECOT_CONFIG     := /usr/lib/dovecot/dovecot-config
DOVECOT_INCDIR     := $(or $(shell sed -n 's/^dovecot_pkgincludedir=//p' $(DOVECOT_CONFIG) 2>/dev/null),/usr/include/dovecot)
DOVECOT_MODULEDIR  := $(or $(shell sed -n 's/^dovecot_moduledir=//p' $(DOVECOT_CONFIG) 2>/dev/null),/usr/lib/dovecot/modules)
# Flags every object that includes Dovecot headers needs (add to CFLAGS with a
# target-specific variable, e.g.  $(B)/obj/dovecot-plugin/junk%.o: CFLAGS += $(DOVECOT_MOD_CFLAGS)).
DOVECOT_MOD_CFLAGS := -DHAVE_CONFIG_H -I$(DOVECOT_INCDIR)
# Link flags for a Dovecot module: symbols from lib/ stay private to the .so.
DOVECOT_MOD_LDFLAGS := -Wl,--exclude-libs,ALL

# lib/hm_users*.c verify and make hashes with libxcrypt.
LDLIBS_ALL += -lcrypt

# ---- auth: libauthdb_homemail.so + homemail-user ------------------------
# authdb_args.c (settings), authdb_lookup.c (accounts) and authdb_verify.c
# (password check) are Dovecot-independent, behind authdb_core.h (unit-tested
# through libauthdb_core.a); authdb_homemail.c is the glue that includes
# Dovecot's headers.
AUTHDB_CORE_LIB := $(B)/libauthdb_core.a
AUTHDB_SO       := $(B)/libauthdb_homemail.so
HOMEMAIL_USER   := $(B)/homemail-user

$(B)/obj/dovecot-plugin/authdb_homemail.o: CFLAGS += $(DOVECOT_MOD_CFLAGS)

AUTHDB_CORE_OBJS := $(patsubst %,$(B)/obj/dovecot-plugin/authdb_%.o,args lookup verify)

$(AUTHDB_CORE_LIB): $(AUTHDB_CORE_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(AUTHDB_SO): $(B)/obj/dovecot-plugin/authdb_homemail.o $(AUTHDB_CORE_LIB) $(LIBHM)
	$(CC) $(LDFLAGS_SO) $(DOVECOT_MOD_LDFLAGS) -o $@ $(B)/obj/dovecot-plugin/authdb_homemail.o \
	  $(AUTHDB_CORE_LIB) $(LIBHM) -lcrypt -lnettle

HOMEMAIL_USER_SRCS := $(wildcard dovecot-plugin/homemail-user*.c)
HOMEMAIL_USER_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(HOMEMAIL_USER_SRCS))

$(HOMEMAIL_USER): $(HOMEMAIL_USER_OBJS) $(AUTHDB_CORE_LIB) $(LIBHM)
	$(CC) -o $@ $(HOMEMAIL_USER_OBJS) $(LDFLAGS_EXE) $(AUTHDB_CORE_LIB) $(LIBHM) -lcrypt -lnettle

STATIC_LIBS += $(AUTHDB_CORE_LIB)
UNIT_EXTRA_CFLAGS += -Idovecot-plugin
SOS         += $(AUTHDB_SO)
ifneq ($(HOMEMAIL_USER_SRCS),)
BINS        += $(HOMEMAIL_USER)
endif
INSTALL_STEPS += install-auth

install-auth: $(AUTHDB_SO) $(if $(HOMEMAIL_USER_SRCS),$(HOMEMAIL_USER))
	install -d -m 0755 $(DESTDIR)$(DOVECOT_MODULEDIR)/auth
	install -m 0644 $(AUTHDB_SO) $(DESTDIR)$(DOVECOT_MODULEDIR)/auth/libauthdb_homemail.so
	$(if $(HOMEMAIL_USER_SRCS),install -d -m 0755 $(DESTDIR)$(PREFIX)/sbin)
	$(if $(HOMEMAIL_USER_SRCS),install -m 0755 $(HOMEMAIL_USER) $(DESTDIR)$(PREFIX)/sbin/homemail-user)
	install -d -m 0755 $(DESTDIR)/etc/homemail $(DESTDIR)/etc/dovecot/conf.d
	install -m 0644 dovecot-plugin/auth-homemail.conf.ext $(DESTDIR)/etc/dovecot/conf.d/auth-homemail.conf.ext
	install -d -m 0700 $(DESTDIR)/var/lib/homemail

-include $(wildcard dovecot-plugin/junk.mk)

-include $(wildcard dovecot-plugin/passwd.mk)
