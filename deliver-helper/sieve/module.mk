# deliver-helper/sieve/module.mk — the Sieve engine (build/libhmsieve.a) and
# its CLI build/homemail-sieve (libnettle: SHA-256 of long duplicate ids).
SIEVE_SRCS := $(filter-out deliver-helper/sieve/homemail-sieve.c,$(wildcard deliver-helper/sieve/*.c))
SIEVE_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(SIEVE_SRCS))
SIEVE_LIB  := $(B)/libhmsieve.a

$(SIEVE_OBJS) $(B)/obj/deliver-helper/sieve/homemail-sieve.o: CFLAGS += -D_GNU_SOURCE -Ideliver-helper/sieve

$(SIEVE_LIB): $(SIEVE_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/homemail-sieve: $(B)/obj/deliver-helper/sieve/homemail-sieve.o $(SIEVE_LIB) $(LIBHM)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS_EXE) $(NETTLE_STATIC)

STATIC_LIBS += $(SIEVE_LIB)
# the LDA's filter (deliver-helper/deliver_filter.c) runs the engine
$(B)/homemail-deliver: $(SIEVE_LIB)
BINS += $(B)/homemail-sieve
UNIT_EXTRA_CFLAGS += -Ideliver-helper/sieve

install-sieve: $(B)/homemail-sieve
	install -D -m 0755 $(B)/homemail-sieve $(DESTDIR)$(PREFIX)/bin/homemail-sieve
INSTALL_STEPS += install-sieve
