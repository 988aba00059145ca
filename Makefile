# homemail — top-level build.
#
# Each piece keeps its own rules in <dir>/module.mk; this file holds the
# flags, the shared static library of lib/, the unit-test and check wiring.
# Every output lands in build/ under the names fixed in docs/design.md.
#
#   make                 build everything
#   make check           install test deps (apt), build, run unit + integration tests
#   make check SANITIZE=1  the same with ASan+UBSan
#   make install DESTDIR=... PREFIX=/usr
#   make lab / make lab-check   provision and probe the home.com.bo lab
#   make lint            cppcheck + clang-tidy + valgrind over the tree (tools/lint)
#   make bench, make fuzz FUZZ_SECONDS=N, make deb, make clean

SHELL      := /bin/bash
B          := build
PREFIX     ?= /usr
DESTDIR    ?=
SANITIZE   ?= 0
CC         ?= cc
PYTHON     := /usr/bin/python3

CFLAGS_BASE := -std=gnu11 -g -Wall -Wextra -Werror -Wshadow -Wformat=2 \
               -Wno-unused-parameter -fPIC -fstack-protector-strong \
               -fno-strict-aliasing -Ilib
ifeq ($(SANITIZE),1)
CFLAGS_OPT  := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined
LDFLAGS_SAN := -fsanitize=address,undefined
else
CFLAGS_OPT  := -O2 -D_FORTIFY_SOURCE=2
LDFLAGS_SAN :=
endif
CFLAGS      := $(CFLAGS_BASE) $(CFLAGS_OPT) $(EXTRA_CFLAGS)
LDFLAGS_EXE := -pie -Wl,-z,relro,-z,now $(LDFLAGS_SAN)
LDFLAGS_SO  := -shared -Wl,-z,relro,-z,now $(LDFLAGS_SAN)

# Filled in by the module.mk fragments.
BINS          :=
SOS           :=
STATIC_LIBS   :=
LDLIBS_ALL    :=
INSTALL_STEPS :=
UNIT_EXTRA_CFLAGS :=
BENCH_TOOLS   :=

all: build-all

# Rebuild everything when the flags change (e.g. SANITIZE=1 after a plain build).
FLAGS_STAMP := $(B)/.flags
$(shell mkdir -p $(B); echo '$(CC) $(CFLAGS) $(LDFLAGS_EXE)' | cmp -s - $(FLAGS_STAMP) || echo '$(CC) $(CFLAGS) $(LDFLAGS_EXE)' > $(FLAGS_STAMP))

# ---- lib/: the shared static library -----------------------------------
LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRCS))
LIBHM    := $(B)/libhomemail.a
LDLIBS_ALL += -lnettle
# Nettle is linked statically into the per-message programs (homemail-deliver,
# homemail-sieve): loading libnettle.so cost each run ~0.12 ms (its ~550
# symbol relocations under -z now, four mmaps, 9 page faults) against
# ~0.03 ms for the few objects they use (SHA-256, Base64) linked in; see
# docs/deliver.md.  Put it after our archives: -lnettle in LDLIBS_ALL then
# finds nothing left to resolve and --as-needed drops the shared one.
NETTLE_STATIC := -Wl,-Bstatic -lnettle -Wl,-Bdynamic

# The package version for --version (lib/hm_cli.c), from debian/changelog.
HM_VERSION := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
$(B)/obj/lib/hm_cli.o: CFLAGS += -DHM_VERSION='"$(HM_VERSION)"'
$(B)/obj/lib/hm_cli.o: debian/changelog

$(LIBHM): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(wildcard */module.mk) $(wildcard */*/module.mk)

STATIC_LIBS += $(LIBHM)

# ---- C unit tests: tests/unit/test_*.c, one cmocka binary each ---------
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRCS))

$(B)/tests/%: tests/unit/%.c $(STATIC_LIBS) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(UNIT_EXTRA_CFLAGS) -o $@ $< $(LDFLAGS_EXE) \
	  -Wl,--start-group $(STATIC_LIBS) -Wl,--end-group $(LDLIBS_ALL) -lcmocka

build-all: $(LIBHM) $(BINS) $(SOS)
build-tests: build-all $(UNIT_BINS)

# ---- targets for people ----------------------------------------------
deps:
	@tools/install-deps check

check: deps
	$(MAKE) build-tests
	SANITIZE=$(SANITIZE) $(PYTHON) tests/run.py $(if $(TESTS),--only '$(TESTS)')

install: build-all $(INSTALL_STEPS)

bench: build-all $(BENCH_TOOLS)
	@tools/install-deps check
	bench/run-all

# cppcheck, clang-tidy, bear, valgrind come from tools/deps.d/harden.check;
# tools/lint builds its own plain copy in build/lint (LINT_JOBS=N to change -j)
lint:
	@tools/install-deps check
	tools/lint

fuzz:
	@tools/install-deps check
	$(MAKE) -f tests/fuzz/fuzz.mk FUZZ_SECONDS=$(or $(FUZZ_SECONDS),10)

lab:
	@tools/lab lab

lab-check:
	@tools/lab check

deb:
	@tools/install-deps deb
	dpkg-buildpackage -us -uc -b

clean:
	rm -rf $(B)

.PHONY: all build-all build-tests deps check install bench lint fuzz lab lab-check deb clean $(INSTALL_STEPS)
.SECONDARY:

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
