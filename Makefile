# crtools — one Makefile for everything.
#
#   make            build libcrcommon.a and every binary into $(O)/bin
#   make test       unit tests, man page lint, integration tests
#   make check      the same tests with ASan+UBSan builds (in build-san/)
#   make demo       checkpoint and restore a live counting program
#   make bench      dump/restore throughput, freeze time, image size, memory
#   make fuzz       libFuzzer over the image reader (clang, in build-fuzz/), FUZZ_SECONDS long
#   make install    PREFIX=/usr/local DESTDIR= : binaries and man pages
#   make clean

O        ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CXX      ?= g++
SAN      ?=
FUZZ     ?=
FUZZ_SECONDS ?= 60
# The blobs are built with g++ in every build (NOTES.md: flags tested with g++ 12).
BLOB_CXX ?= g++

CXXSTD   := -std=gnu++20
# -Wno-restrict: g++ 12 false positive on std::string concatenation (GCC PR 105329).
WARN     := -Wall -Wextra -Werror -Wno-missing-field-initializers -Wno-restrict
OPT      := -O2 -g
ifeq ($(SAN),1)
OPT      := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN    := -fsanitize=address,undefined
endif
# The fuzzing build (make fuzz): clang with libFuzzer's coverage, ASan and
# UBSan; checksums are not enforced there (common/crc32c.h).
ifeq ($(FUZZ),1)
CXX      := clang++
WARN     := -Wall -Wextra -Werror -Wno-missing-field-initializers
OPT      := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
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

FUZZ_SRC := $(sort $(wildcard test/fuzz/*.cc))
FUZZ_OBJ := $(FUZZ_SRC:%.cc=$(O)/obj/%.o)
FUZZ_BIN := $(O)/test/image-fuzz

MAN_PAGES := $(sort $(wildcard man/*.[0-9]))

GEN := $(O)/gen/syscall_table.inc

.PHONY: all test check demo bench fuzz install clean deps unit man-lint integration
all: $(BINS) $(UNIT_BIN) $(INTEG_BIN) $(WORKLOAD_BIN)

deps:
	@./scripts/install-deps --if-missing

# ---------------------------------------------------------------- generated
# The syscall name table, from the kernel headers (never typed by hand).
UNISTD_H := $(firstword $(wildcard /usr/include/x86_64-linux-gnu/asm/unistd_64.h /usr/include/asm/unistd_64.h))
$(O)/gen/syscall_table.inc: scripts/gen-syscall-table $(UNISTD_H)
	@mkdir -p $(@D)
	./scripts/gen-syscall-table $(UNISTD_H) > $@.tmp && mv $@.tmp $@

# ---------------------------------------------------------------- blobs
# The parasite and the restorer: freestanding position-independent C++ blobs
# (parasite/). They get their own flags (never $(OPT): no sanitizers), a
# relocatable link with parasite/blob.lds, and parasite/gen-blob turns each
# into $(O)/gen/<blob>_blob.inc (bytes, sizes, exported symbols, absolute
# relocations), which common/blob/blobs.cc embeds. The link fails on orphan
# sections, constructors or a missing __blob_entry; gen-blob fails on any
# relocation, undefined or COMMON symbol the loader cannot honour.
# test/unit/blob_bad/ holds deliberately bad objects proving both.
LD            ?= ld
BLOB_CPPFLAGS := -I. -U_FORTIFY_SOURCE
BLOB_CXXFLAGS := -std=gnu++20 -O2 -fpie -ffreestanding -fno-exceptions -fno-rtti \
                 -fno-asynchronous-unwind-tables -fno-unwind-tables -fno-threadsafe-statics \
                 -fno-stack-protector -fcf-protection=none -fvisibility=hidden -nostdlib \
                 -mgeneral-regs-only $(WARN) -MMD -MP
BLOB_LDFLAGS  := -r -z noexecstack --force-group-allocation --orphan-handling=error \
                 -T parasite/blob.lds
GEN_BLOB      := $(O)/tools/gen-blob

BLOBS             := parasite restorer
BLOB_RT           := blob_rt
parasite_SRC      := parasite $(BLOB_RT)
parasite_EXPORTS  := parasite_trap_entry parasite_return_done parasite_service parasite_args parasite_return parasite_stack_top
restorer_SRC      := restorer restorer_task $(BLOB_RT)
restorer_EXPORTS  := restorer_entry restorer_main restorer_args restorer_stack_top

GEN += $(foreach b,$(BLOBS),$(O)/gen/$(b)_blob.inc)

$(GEN_BLOB): parasite/gen-blob.cc
	@mkdir -p $(@D)
	$(BLOB_CXX) $(CXXSTD) -O1 -g $(WARN) -MMD -MP -o $@ $<

$(O)/blob/obj/%.o: parasite/%.cc
	@mkdir -p $(@D)
	$(BLOB_CXX) $(BLOB_CPPFLAGS) $(BLOB_CXXFLAGS) -c $< -o $@

define blob_rule
$(O)/blob/$(1).o: $$(patsubst %,$(O)/blob/obj/%.o,$$($(1)_SRC)) parasite/blob.lds
	$$(LD) $$(BLOB_LDFLAGS) -o $$@ $$(filter %.o,$$^) || { echo "blob $(1): link failed (see parasite/blob.lds)" >&2; rm -f $$@; exit 1; }
$(O)/gen/$(1)_blob.inc: $(O)/blob/$(1).o $(GEN_BLOB)
	@mkdir -p $$(@D)
	$(GEN_BLOB) --name $(1) $$(addprefix --export ,$$($(1)_EXPORTS)) -o $$@ $$<
endef
$(foreach b,$(BLOBS),$(eval $(call blob_rule,$(b))))

# Rejection tests. The bad objects are built here; the unit test
# "gen-blob rejects ..." runs gen-blob on them. The linker script's own
# checks are proven at build time: each case must fail to link with the
# expected message, or the build stops.
BLOB_BAD_SRC := $(sort $(wildcard test/unit/blob_bad/*.S test/unit/blob_bad/*.cc))
BLOB_BAD_OBJ := $(patsubst test/unit/blob_bad/%,$(O)/test/blob/%.o,$(BLOB_BAD_SRC))
BLOB_LD_REJECT := ctor.cc.o:constructor noentry.S.o:__blob_entry tls.S.o:orphan
BLOB_TEST_DEPS := $(GEN_BLOB) $(BLOB_BAD_OBJ) $(O)/test/blob/good.o $(O)/test/blob/ld-reject.stamp

$(O)/test/blob/%.S.o: test/unit/blob_bad/%.S
	@mkdir -p $(@D)
	$(BLOB_CXX) -c $< -o $@
$(O)/test/blob/%.cc.o: test/unit/blob_bad/%.cc
	@mkdir -p $(@D)
	$(BLOB_CXX) $(BLOB_CPPFLAGS) $(filter-out -MMD -MP,$(BLOB_CXXFLAGS)) -c $< -o $@
$(O)/test/blob/good.o: $(O)/test/blob/good.S.o parasite/blob.lds
	$(LD) $(BLOB_LDFLAGS) -o $@ $<
$(O)/test/blob/ld-reject.stamp: $(BLOB_BAD_OBJ) parasite/blob.lds
	@for c in $(BLOB_LD_REJECT); do \
	  o=$(@D)/$${c%%:*}; want=$${c#*:}; \
	  if $(LD) $(BLOB_LDFLAGS) -o $(@D)/ld-reject.out $$o 2>$(@D)/ld-reject.err; then \
	    echo "parasite/blob.lds accepted the bad blob $$o (expected an error about $$want)" >&2; exit 1; \
	  fi; \
	  grep -q -- "$$want" $(@D)/ld-reject.err || { \
	    echo "parasite/blob.lds rejected $$o, but not for $$want:" >&2; cat $(@D)/ld-reject.err >&2; exit 1; }; \
	done; echo "blob.lds rejects: $(BLOB_LD_REJECT)"; touch $@
$(UNIT_BIN): $(BLOB_TEST_DEPS)

-include $(wildcard $(O)/blob/obj/*.d $(O)/tools/*.d)

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

$(FUZZ_BIN): $(FUZZ_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CXX) -fsanitize=fuzzer,address,undefined -o $@ $(FUZZ_OBJ) $(LIB) $(LDLIBS)

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
	$(MAKE) O=build-fuzz FUZZ=1 build-fuzz/test/image-fuzz
	FUZZ_BUILD=build-fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) ./test/run-all $(O)

# The same suites with ASan+UBSan builds of every host binary.
check: deps
	$(MAKE) O=build-san SAN=1 all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  SKIP_MAN=1 ./test/run-all build-san

demo: deps
	$(MAKE) all
	./scripts/demo $(O)/bin

# libFuzzer over the image reader: a clang build in build-fuzz/, seeds
# dumped from live workloads by the regular build, the kept crash inputs
# (test/fuzz/regressions) first, then FUZZ_SECONDS of fuzzing.
fuzz: deps
	$(MAKE) all
	$(MAKE) O=build-fuzz FUZZ=1 build-fuzz/test/image-fuzz
	./test/fuzz/run $(O) build-fuzz $(FUZZ_SECONDS)

bench: deps
	$(MAKE) all
	./test/bench/run $(O)/bin

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/sbin/
	install -m 0644 $(filter %.8,$(MAN_PAGES)) $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 $(filter %.5,$(MAN_PAGES)) $(DESTDIR)$(PREFIX)/share/man/man5/

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
