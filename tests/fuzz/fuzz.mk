# tests/fuzz/fuzz.mk — libFuzzer harnesses for every homemail parser that
# reads outside input.
#
#   make fuzz FUZZ_SECONDS=N             build all, run each harness N seconds
#   make -f tests/fuzz/fuzz.mk replay    run every harness once over its seed
#                                        corpus + regressions (CI, make check)
#   make -f tests/fuzz/fuzz.mk run-NAME  fuzz one harness (fuzz_NAME.c)
#   make -f tests/fuzz/fuzz.mk FUZZ_ONLY="header mime" ...  a subset
#   make -s -f tests/fuzz/fuzz.mk print-cflags  the harnesses' compile flags
#                                        (tools/lint's compile database)
#
# Each harness tests/fuzz/fuzz_<name>.c is built with clang
# -fsanitize=fuzzer,address,undefined from the project's own sources: all of
# lib/*.c plus the engine files named in FUZZ_SRCS_<name> below (compiled
# directly, no -Werror: clang's warnings are not gcc's).  Seeds live in
# tests/fuzz/corpus/<name>/, crashing inputs found so far in
# tests/fuzz/regressions/<name>/ (each replayed forever after), an optional
# dictionary in tests/fuzz/dict/<name>.dict.  New inputs a run discovers go to
# build/fuzz/corpus/<name>/ (never into the checked-in seeds); crashes to
# build/fuzz/artifacts/<name>/.  A summary per harness (executions, edge
# coverage, features, corpus size) is appended to build/fuzz/summary.txt.

SHELL        := /bin/bash
FUZZ_SECONDS ?= 10
FUZZ_CC      ?= clang
FZ           := build/fuzz
FUZZ_CFLAGS   = -std=gnu11 -g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE \
                -DHM_FUZZING=1 -Ilib -Iexim-local-scan -Ideliver-helper -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined -w $(FUZZ_CFLAGS_EXTRA)
FUZZ_OBJ_FLAGS  = $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link
FUZZ_LINK_FLAGS := -fsanitize=fuzzer,address,undefined
FUZZ_LIBS    := -lcrypt -lnettle
# Per-run options: a 10 s per-input timeout (a hang is a bug, as in Exim's
# local_scan budget), 2 GB RSS cap, inputs up to 256 KB.
FUZZ_RUN_OPTS ?= -timeout=10 -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1

# ---- harness list --------------------------------------------------------
# Every tests/fuzz/fuzz_<name>.c whose sources exist in the tree.  A harness
# whose engine has not landed yet names a file in FUZZ_NEEDS_<name>; it is
# skipped (with a note) until that file exists.
FUZZ_ALL := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_ONLY ?=
FUZZ_LIST_REQ := $(if $(FUZZ_ONLY),$(filter $(FUZZ_ONLY),$(FUZZ_ALL)),$(FUZZ_ALL))

LIB_SRCS := $(wildcard lib/*.c)

# Engine sources per harness (besides lib/*.c), and extra libraries.
# Keep in step with the engines' module.mk files.
SIEVE_DIR := $(firstword $(wildcard deliver-helper/sieve sieve))
SIEVE_SRCS := $(filter-out %/main.c %/homemail-sieve.c %/sieve_cli.c %/cli.c,$(wildcard $(SIEVE_DIR)/*.c))
FUZZ_CFLAGS_EXTRA := $(if $(SIEVE_DIR),-I$(SIEVE_DIR))
SCAN_SRCS  := $(wildcard $(addprefix exim-local-scan/,scan_engine.c scan_conf.c scan_names.c scan_archive.c))

FUZZ_SRCS_sieve_parse := $(SIEVE_SRCS)
FUZZ_SRCS_sieve_run   := $(SIEVE_SRCS)
FUZZ_SRCS_scan        := $(SCAN_SRCS)
FUZZ_SRCS_scan_conf   := $(SCAN_SRCS)
FUZZ_SRCS_archive     := $(SCAN_SRCS)
FUZZ_SRCS_deliver_conf := deliver-helper/deliver_conf.c
FUZZ_SRCS_dmarc       := exim-local-scan/scan_dmarc.c
FUZZ_LIBS_dmarc       := -lopendmarc -lpsl -lidn2
FUZZ_LIBS_scan        := -larchive
FUZZ_LIBS_scan_conf   := -larchive
FUZZ_LIBS_archive     := -larchive -lz
FUZZ_LIBS_sieve_run   := -lcrypt
FUZZ_LIBS_users       := -lcrypt

FUZZ_NEEDS_header   := lib/hm_header.c
FUZZ_NEEDS_address  := lib/hm_address.c
FUZZ_NEEDS_rfc2047  := lib/hm_rfc2047.c
FUZZ_NEEDS_junklist := lib/hm_junklist.c
FUZZ_NEEDS_mime     := lib/hm_mime.c lib/hm_rfc2231.c
FUZZ_NEEDS_rfc2231  := lib/hm_rfc2231.c
FUZZ_NEEDS_authmaster := lib/hm_authmaster.c
FUZZ_NEEDS_users    := lib/hm_users.c
FUZZ_NEEDS_vdomains := lib/hm_route.c
FUZZ_NEEDS_mutf7    := lib/hm_mutf7.c
FUZZ_NEEDS_msgin    := lib/hm_msgin.c
FUZZ_NEEDS_quota    := lib/hm_quota.c
FUZZ_NEEDS_scan     := exim-local-scan/scan_engine.c
FUZZ_NEEDS_scan_conf := exim-local-scan/scan_conf.c
FUZZ_NEEDS_archive  := exim-local-scan/scan_archive.c
FUZZ_NEEDS_deliver_conf := deliver-helper/deliver_conf.c
FUZZ_NEEDS_dmarc    := exim-local-scan/scan_dmarc.c
FUZZ_LIBS_authmaster := -lpthread
FUZZ_NEEDS_sieve_parse := deliver-helper/sieve/sieve.h
FUZZ_NEEDS_sieve_run   := deliver-helper/sieve/sieve.h

# A harness is buildable when every file in FUZZ_NEEDS_<name> exists.
fuzz_ready = $(if $(strip $(foreach f,$(FUZZ_NEEDS_$(1)),$(if $(wildcard $(f)),,missing))),,$(1))
FUZZ_LIST    := $(strip $(foreach h,$(FUZZ_LIST_REQ),$(call fuzz_ready,$(h))))
FUZZ_SKIPPED := $(filter-out $(FUZZ_LIST),$(FUZZ_LIST_REQ))
FUZZ_BINS    := $(patsubst %,$(FZ)/fuzz_%,$(FUZZ_LIST))

fuzz_obj = $(patsubst %.c,$(FZ)/obj/%.o,$(1))

all: fuzz-run
build: $(FUZZ_BINS)
	@$(if $(FUZZ_SKIPPED),echo "fuzz: not built yet (engine missing): $(FUZZ_SKIPPED)")

$(FZ)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_OBJ_FLAGS) -MMD -MP -c -o $@ $<

# lib/ as an archive, so a harness pulls in only the objects it uses.
$(FZ)/libhm_fuzz.a: $(call fuzz_obj,$(LIB_SRCS))
	@rm -f $@
	ar rcs $@ $^

# One link rule per harness: the harness + its engine sources + lib/.
define FUZZ_template
$(FZ)/fuzz_$(1): $(call fuzz_obj,tests/fuzz/fuzz_$(1).c $(FUZZ_SRCS_$(1))) $(FZ)/libhm_fuzz.a
	@mkdir -p $$(dir $$@)
	$(FUZZ_CC) $(FUZZ_LINK_FLAGS) -o $$@ $$^ -Wl,--as-needed $(FUZZ_LIBS) $(FUZZ_LIBS_$(1))
endef
$(foreach h,$(FUZZ_LIST),$(eval $(call FUZZ_template,$(h))))

# ---- running -------------------------------------------------------------
OPEN_LIST := $(shell sed -e 's/\#.*//' tests/fuzz/regressions/OPEN 2>/dev/null | awk 'NF {print "tests/fuzz/regressions/" $$1}')
# run-NAME: fuzz for FUZZ_SECONDS, then record the final stats line.
run-%: $(FZ)/fuzz_%
	@mkdir -p $(FZ)/corpus/$* $(FZ)/artifacts/$*
	@rm -rf $(FZ)/seeds/$*; mkdir -p $(FZ)/seeds/$*; \
	for f in $$(find tests/fuzz/corpus/$* tests/fuzz/regressions/$* -type f 2>/dev/null); do \
	  case " $(OPEN_LIST) " in *" $$f "*) continue;; esac; \
	  cp "$$f" $(FZ)/seeds/$*/$$(basename $$(dirname $$f))-$$(basename $$f); done
	@echo "== fuzz $* for $(FUZZ_SECONDS)s"
	@set -o pipefail; \
	dict=; [ -f tests/fuzz/dict/$*.dict ] && dict=-dict=tests/fuzz/dict/$*.dict; \
	ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
	UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	$(FZ)/fuzz_$* $(FUZZ_RUN_OPTS) -max_total_time=$(FUZZ_SECONDS) $$dict \
	  -artifact_prefix=$(FZ)/artifacts/$*/ \
	  $(FZ)/corpus/$* $(FZ)/seeds/$* \
	  > $(FZ)/log-$*.txt 2>&1; rc=$$?; \
	tests/fuzz/summarize $* $(FZ)/log-$*.txt $(FUZZ_SECONDS) $$rc | tee -a $(FZ)/summary.txt; \
	if [ $$rc -ne 0 ]; then tail -60 $(FZ)/log-$*.txt; \
	  echo "fuzz $*: FAILED — crashing input in $(FZ)/artifacts/$*/ (copy it into tests/fuzz/regressions/$*/)"; \
	  exit 1; fi

fuzz-run: build
	@mkdir -p $(FZ); : > $(FZ)/summary.txt; fail=; \
	for h in $(FUZZ_LIST); do $(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk run-$$h FUZZ_SECONDS=$(FUZZ_SECONDS) || fail="$$fail $$h"; done; \
	echo "== fuzz summary ($(FUZZ_SECONDS)s each)"; cat $(FZ)/summary.txt; \
	if [ -n "$$fail" ]; then echo "fuzz: crashes in:$$fail"; exit 1; fi

# replay-NAME: every seed and regression input once; any crash fails.
# Inputs listed in tests/fuzz/regressions/OPEN (bugs not fixed yet in the
# owner's file) are left out here and run by replay-open instead.

replay-%: $(FZ)/fuzz_%
	@files=$$(find tests/fuzz/corpus/$* tests/fuzz/regressions/$* -type f 2>/dev/null | sort | grep -vxF -e /dev/null $(patsubst %,-e %,$(OPEN_LIST))); \
	n=$$(printf '%s\n' $$files | grep -c . || true); \
	if [ "$$n" -eq 0 ]; then echo "replay $*: no inputs"; exit 1; fi; \
	ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1} \
	UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	$(FZ)/fuzz_$* -timeout=20 -rss_limit_mb=2048 $$files > $(FZ)/replay-$*.txt 2>&1; rc=$$?; \
	if [ $$rc -ne 0 ]; then tail -60 $(FZ)/replay-$*.txt; echo "replay $*: FAILED ($$n inputs)"; exit 1; fi; \
	echo "replay $*: $$n inputs ok"

replay: build
	@fail=; for h in $(FUZZ_LIST); do \
	  $(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk replay-$$h || fail="$$fail $$h"; done; \
	if [ -n "$$fail" ]; then echo "replay: failures in:$$fail"; exit 1; fi; \
	echo "replay: all $(words $(FUZZ_LIST)) harnesses ok"

# replay-open: each OPEN input once; prints "open NAME/FILE: still-failing|fixed"
replay-open: build
	@for f in $(OPEN_LIST); do \
	  h=$$(basename $$(dirname $$f)); \
	  if [ ! -x $(FZ)/fuzz_$$h ]; then echo "open $${f#tests/fuzz/regressions/}: not-built"; continue; fi; \
	  if $(FZ)/fuzz_$$h -timeout=20 $$f > $(FZ)/open-$$(basename $$f).txt 2>&1; \
	  then echo "open $${f#tests/fuzz/regressions/}: fixed"; \
	  else echo "open $${f#tests/fuzz/regressions/}: still-failing"; fi; done

list:
	@echo $(FUZZ_LIST)

print-cflags:
	@echo $(FUZZ_CFLAGS)

clean:
	rm -rf $(FZ)

.PHONY: all build fuzz-run replay replay-open list print-cflags clean
.SECONDARY:

-include $(shell find $(FZ)/obj -name '*.d' 2>/dev/null)
