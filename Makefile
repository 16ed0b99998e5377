# crtools — one Makefile for everything.
#
#   make            build libcrcommon.a and every binary into $(O)/bin
#   make test       unit tests, man page lint, integration tests
#   make check      the same tests with ASan+UBSan builds (in build-san/)
#   make demo       checkpoint and restore a live counting program
#   make bench      dump/restore throughput, freeze time, image size, memory
#   make install    PREFIX=/usr/local DESTDIR= : binaries and man pages
#   make clean

O        ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CXX      ?= g++
SAN      ?=

CXXSTD   := -std=gnu++20
# -Wno-restrict: g++ 12 false positive on std::string concatenation (GCC PR 105329).
WARN     := -Wall -Wextra -Werror -Wno-missing-field-initializers -Wno-restrict
OPT      := -O2 -g
ifeq ($(SAN),1)
OPT      := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN    := -fsanitize=address,undefined
endif
CPPFLAGS := -I. -I$(O)/gen -D_GNU_SOURCE
CXXFLAGS := $(CXXSTD) $(OPT) $(WARN) -MMD -MP
LDFLAGS  := $(LDSAN)
LDLIBS   := -lboost_filesystem -lzstd $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz) -lpthread

# Every command folder that has sources becomes a binary.
COMMANDS := $(foreach d,crtools cr-show cr-exec cr-check cr-dump cr-restore,$(if $(wildcard $(d)/*.cc),$(d)))
BINS     := $(addprefix $(O)/bin/,$(COMMANDS))

COMMON_SRC := $(sort $(wildcard common/*.cc common/*/*.cc))
COMMON_OBJ := $(COMMON_SRC:%.cc=$(O)/obj/%.o)
LIB        := $(O)/lib/libcrcommon.a

UNIT_SRC := $(sort $(wildcard test/unit/*.cc))
UNIT_OBJ := $(UNIT_SRC:%.cc=$(O)/obj/%.o)
UNIT_BIN := $(O)/test/unit-tests

INTEG_SRC := $(sort $(wildcard test/integration/*.cc))
INTEG_OBJ := $(INTEG_SRC:%.cc=$(O)/obj/%.o)
INTEG_BIN := $(O)/test/integration-tests

WORKLOAD_SRC := $(sort $(wildcard test/workloads/*.c test/workloads/*.cc))
WORKLOAD_BIN := $(patsubst test/workloads/%,$(O)/test/workloads/%,$(basename $(WORKLOAD_SRC)))

MAN_PAGES := $(sort $(wildcard man/*.[0-9]))

GEN := $(O)/gen/syscall_table.inc

.PHONY: all test check demo bench install clean deps unit man-lint integration
all: $(BINS) $(UNIT_BIN) $(INTEG_BIN) $(WORKLOAD_BIN)

deps:
	@./scripts/install-deps --if-missing

# ---------------------------------------------------------------- generated
# The syscall name table, from the kernel headers (never typed by hand).
UNISTD_H := $(firstword $(wildcard /usr/include/x86_64-linux-gnu/asm/unistd_64.h /usr/include/asm/unistd_64.h))
$(O)/gen/syscall_table.inc: scripts/gen-syscall-table $(UNISTD_H)
	@mkdir -p $(@D)
	./scripts/gen-syscall-table $(UNISTD_H) > $@.tmp && mv $@.tmp $@

# ---------------------------------------------------------------- objects
$(O)/obj/%.o: %.cc | $(GEN)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(LIB): $(COMMON_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# One binary per command folder: every .cc in it.
define command_rule
$(O)/bin/$(1): $$(patsubst %.cc,$(O)/obj/%.o,$$(sort $$(wildcard $(1)/*.cc))) $(LIB)
	@mkdir -p $$(@D)
	$$(CXX) $$(LDFLAGS) -o $$@ $$^ $(LIB) $$(LDLIBS)
endef
$(foreach c,$(COMMANDS),$(eval $(call command_rule,$(c))))

$(UNIT_BIN): $(UNIT_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(UNIT_OBJ) $(LIB) $(LDLIBS)

$(INTEG_BIN): $(INTEG_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $(INTEG_OBJ) $(LIB) $(LDLIBS)

# Workloads are plain programs (no crtools code in them).
$(O)/test/workloads/%: test/workloads/%.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $< -lpthread -lm
$(O)/test/workloads/%: test/workloads/%.cc
	@mkdir -p $(@D)
	$(CXX) $(CXXSTD) -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $< -lpthread

# ---------------------------------------------------------------- tests
unit: $(UNIT_BIN)
	$(UNIT_BIN) --no-intro=true $(TESTARGS)

man-lint:
	./test/man-lint $(MAN_PAGES)

integration: $(BINS) $(INTEG_BIN) $(WORKLOAD_BIN)
	CRTOOLS_BIN=$(abspath $(O)/bin) CRTOOLS_WORKLOADS=$(abspath $(O)/test/workloads) \
	  $(INTEG_BIN) --no-intro=true $(TESTARGS)

test: deps
	$(MAKE) all
	./test/run-all $(O)

# The same suites with ASan+UBSan builds of every host binary.
check: deps
	$(MAKE) O=build-san SAN=1 all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  SKIP_MAN=1 ./test/run-all build-san

demo: deps
	$(MAKE) all
	./scripts/demo $(O)/bin

bench: deps
	$(MAKE) all
	./test/bench/run $(O)/bin

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/sbin/
	install -m 0644 $(filter %.8,$(MAN_PAGES)) $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 $(filter %.5,$(MAN_PAGES)) $(DESTDIR)$(PREFIX)/share/man/man5/

clean:
	rm -rf build build-san

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
