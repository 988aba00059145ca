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

-include $(wildcard dovecot-plugin/junk.mk)
