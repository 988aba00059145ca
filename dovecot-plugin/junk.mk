# dovecot-plugin/junk.mk — lib90_homemail_junk_plugin.so (owned by the junk piece).
#
# Included by dovecot-plugin/module.mk, which defines DOVECOT_MOD_CFLAGS
# (-DHAVE_CONFIG_H -I/usr/include/dovecot) and DOVECOT_MOD_LDFLAGS.  The
# fallbacks below keep this file usable on its own.

JUNK_DOVECOT_CFLAGS  := $(or $(DOVECOT_MOD_CFLAGS),-DHAVE_CONFIG_H -I/usr/include/dovecot)
JUNK_DOVECOT_LDFLAGS := $(or $(DOVECOT_MOD_LDFLAGS),-Wl,--exclude-libs,ALL)
JUNK_MODULEDIR       := $(or $(DOVECOT_MODULEDIR),/usr/lib/dovecot/modules)

JUNK_PLUGIN_SRCS := dovecot-plugin/junk-plugin.c dovecot-plugin/junk-learn.c
JUNK_PLUGIN_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(JUNK_PLUGIN_SRCS))
JUNK_PLUGIN      := $(B)/lib90_homemail_junk_plugin.so

# Dovecot's headers use the GNU C dialect they were built with; their
# unused parameters and sign comparisons are theirs, not ours.
$(JUNK_PLUGIN_OBJS): CFLAGS += $(JUNK_DOVECOT_CFLAGS) -Wno-sign-compare

# lib/ objects linked in privately (--exclude-libs): no symbol clashes with
# Dovecot or other plugins.  Dovecot's own symbols resolve at load time.
$(JUNK_PLUGIN): $(JUNK_PLUGIN_OBJS) $(LIBHM)
	$(CC) $(LDFLAGS_SO) $(JUNK_DOVECOT_LDFLAGS) -o $@ $(JUNK_PLUGIN_OBJS) $(LIBHM)

SOS += $(JUNK_PLUGIN)

install-junk: $(JUNK_PLUGIN)
	install -d $(DESTDIR)$(JUNK_MODULEDIR)
	install -m 0644 $(JUNK_PLUGIN) $(DESTDIR)$(JUNK_MODULEDIR)/lib90_homemail_junk_plugin.so
INSTALL_STEPS += install-junk
