# deliver-helper/module.mk — homemail-deliver, the LDA (see docs/deliver.md).
#
# Every deliver-helper/*.c except deliver_main.c goes into a static library so
# unit tests can link the LDA's pieces; deliver-helper/sieve/ has its own
# module.mk.  A filter that needs another static library (the Sieve engine)
# makes it a prerequisite of $(B)/homemail-deliver (see below); the
# link uses --start-group, so order does not matter.

DELIVER_SRCS     := $(filter-out deliver-helper/deliver_main.c,$(wildcard deliver-helper/*.c))
DELIVER_OBJS     := $(patsubst %.c,$(B)/obj/%.o,$(DELIVER_SRCS))
DELIVER_LIB      := $(B)/libhmdeliver.a
DELIVER_MAIN_OBJ := $(B)/obj/deliver-helper/deliver_main.o

$(DELIVER_LIB): $(DELIVER_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

# Libraries homemail-deliver links: every .a prerequisite of the target plus
# DELIVER_LINK_LIBS.  A filter's module.mk only needs
#   $(B)/homemail-deliver: $(B)/libits.a
# (and STATIC_LIBS += $(B)/libits.a for the unit tests).
DELIVER_LINK_LIBS = $(DELIVER_LIB) $(LIBHM)

# Nettle is linked statically (NETTLE_STATIC in the Makefile says why).
$(B)/homemail-deliver: $(DELIVER_MAIN_OBJ) $(DELIVER_LIB) $(LIBHM)
	$(CC) $(CFLAGS) -o $@ $(DELIVER_MAIN_OBJ) $(LDFLAGS_EXE) \
	  -Wl,--start-group $(sort $(filter %.a,$^) $(DELIVER_LINK_LIBS)) -Wl,--end-group \
	  $(NETTLE_STATIC) $(LDLIBS_ALL)

BINS        += $(B)/homemail-deliver
UNIT_EXTRA_CFLAGS += -Ideliver-helper
STATIC_LIBS += $(DELIVER_LIB)
INSTALL_STEPS += install-deliver

install-deliver: $(B)/homemail-deliver
	install -d $(DESTDIR)$(PREFIX)/lib/homemail $(DESTDIR)/etc/homemail
	install -m 0755 $(B)/homemail-deliver $(DESTDIR)$(PREFIX)/lib/homemail/homemail-deliver
	test -e $(DESTDIR)/etc/homemail/deliver.conf || \
	  install -m 0644 deliver-helper/deliver.conf $(DESTDIR)/etc/homemail/deliver.conf
