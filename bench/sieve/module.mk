# bench/sieve/module.mk — sievebench: compile + run of a Sieve script in
# process (bench/sieve/run's "in process" figure; not installed).
# (libhmsieve.a is named directly: this file is read before the engine's
# module.mk defines SIEVE_LIB.)
SIEVEBENCH := $(B)/bench/sievebench

$(SIEVEBENCH): bench/sieve/sievebench.c $(B)/libhmsieve.a $(LIBHM) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -D_GNU_SOURCE -Ideliver-helper/sieve -o $@ $< $(LDFLAGS_EXE) \
	  $(B)/libhmsieve.a $(LIBHM) $(LDLIBS_ALL)

BENCH_TOOLS += $(SIEVEBENCH)
