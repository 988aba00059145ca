# exim-local-scan/module.mk — homemail's MIME policy for Exim.
#   build/libhmscan.a       the policy engine (no Exim needed; unit tests link it)
#   build/homemail-scan     CLI over the same engine
#   build/homemail_scan.so  local_scan() + ${dlfunc homemail_user_exists} for
#                           Debian's exim4 (local_scan_path), ABI checked here

SCAN_ENGINE_SRCS := exim-local-scan/scan_engine.c exim-local-scan/scan_conf.c \
                    exim-local-scan/scan_names.c exim-local-scan/scan_archive.c \
                    exim-local-scan/scan_route.c \
                    exim-local-scan/scan_dmarc.c
SCAN_ENGINE_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(SCAN_ENGINE_SRCS))
SCAN_LIB         := $(B)/libhmscan.a
SCAN_CLI         := $(B)/homemail-scan
SCAN_SO          := $(B)/homemail_scan.so

# the ABI the installed exim4 expects; local_scan.h must say the same major
SCAN_EXIM_ABI := $(shell exim4-localscan-plugin-config --localscan-apiversion 2>/dev/null)
SCAN_EXIM_INC := /usr/include/exim4

STATIC_LIBS += $(SCAN_LIB)
LDLIBS_ALL  += -larchive   # unit tests build zips with libarchive's writer
# DMARC (scan_dmarc.c): Debian's libopendmarc (libopendmarc-dev) and libpsl
# (libpsl-dev, public suffix list), libidn2 (UTF-8 From: domains), linked into
# the .so only; the CLI never pulls scan_dmarc.o out of the archive
LDLIBS_ALL  += -lopendmarc -lpsl -lidn2
UNIT_EXTRA_CFLAGS += -Iexim-local-scan

$(SCAN_LIB): $(SCAN_ENGINE_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/obj/exim-local-scan/%.o: CFLAGS += -Iexim-local-scan

# libarchive is dlopen()ed by scan_archive.c on the first archive (not linked:
# its dependency chain costs ~50 ms per Exim receiving process)
$(SCAN_CLI): $(B)/obj/exim-local-scan/scan_cli.o $(SCAN_LIB) $(LIBHM)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS_EXE) $(SCAN_LIB) $(LIBHM)

# The glue is the only file that sees local_scan.h.  ABI check: the header's
# LOCAL_SCAN_ABI_VERSION_MAJOR must match what the installed exim4 reports.
$(B)/obj/exim-local-scan/scan_exim.o: exim-local-scan/scan_exim.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@test -n "$(SCAN_EXIM_ABI)" || { echo "exim4-localscan-plugin-config missing (exim4-dev)"; exit 1; }
	$(CC) $(CFLAGS) -Iexim-local-scan -isystem $(SCAN_EXIM_INC) \
	  -DHM_EXIM_ABI_MAJOR=$(firstword $(subst ., ,$(SCAN_EXIM_ABI))) \
	  -DHM_EXIM_ABI_MINOR=$(word 2,$(subst ., ,$(SCAN_EXIM_ABI))) \
	  -MMD -MP -c -o $@ $<

# Only the four entry points are exported (exim-local-scan/homemail_scan.map);
# everything else binds inside the module and cannot clash with exim's symbols.
$(SCAN_SO): $(B)/obj/exim-local-scan/scan_exim.o $(SCAN_LIB) $(LIBHM) exim-local-scan/homemail_scan.map
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS_SO) -Wl,--version-script=exim-local-scan/homemail_scan.map \
	  -Wl,-Bsymbolic $(SCAN_LIB) $(LIBHM) -lopendmarc -lpsl -lidn2

# homemail-dmarc-report (Python 3): DMARC aggregate reports from the data
# homemail_scan.so records; the build writes the package version into it
DMARC_REPORT := $(B)/homemail-dmarc-report
$(DMARC_REPORT): exim-local-scan/homemail-dmarc-report debian/changelog
	@mkdir -p $(dir $@)
	sed 's/@HM_VERSION@/$(HM_VERSION)/' $< > $@.tmp && chmod 755 $@.tmp && mv $@.tmp $@

BINS += $(SCAN_CLI) $(DMARC_REPORT)
SOS  += $(SCAN_SO)

scan-install: $(SCAN_CLI) $(SCAN_SO) $(DMARC_REPORT)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/exim4/local_scan $(DESTDIR)/etc/homemail
	install -m 755 $(SCAN_CLI) $(DESTDIR)$(PREFIX)/bin/homemail-scan
	install -m 644 $(SCAN_SO) $(DESTDIR)$(PREFIX)/lib/exim4/local_scan/homemail_scan.so
	install -d $(DESTDIR)$(PREFIX)/sbin
	install -m 755 $(DMARC_REPORT) $(DESTDIR)$(PREFIX)/sbin/homemail-dmarc-report
	test -e $(DESTDIR)/etc/homemail/scan.conf || install -m 644 exim-local-scan/scan.conf $(DESTDIR)/etc/homemail/scan.conf

INSTALL_STEPS += scan-install
