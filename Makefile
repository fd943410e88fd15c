# cs - clickstream Transformer toolkit. See README.md.
CC ?= cc
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIG ?= pkg-config
VERSION = 0.1.0

OPT ?= -O2
CFLAGS ?= $(OPT) -g
WARN = -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter
# OpenMP threads the model's own loops (softmax rows, AdamW); OpenBLAS the products.
OMP ?= -fopenmp
CFLAGS += $(OMP)
LDFLAGS += $(OMP)
# lib/ on the quote path only: lib/time.h must not hide <time.h>.
CPPFLAGS += -D_GNU_SOURCE -iquote lib
DEPS_CFLAGS := $(shell $(PKGCONFIG) --cflags openblas libzstd check 2>/dev/null)
LIBS = -lopenblas -lcsv -lzstd -lpthread -lm
CHECK_LIBS := $(shell $(PKGCONFIG) --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)
# Open MPI, where pkg-config finds it (make deps installs it): cs-train is
# built with lib/comm_mpi.c and trains data-parallel under mpirun (README,
# Training on several machines). Without it (or with MPI_PC=), cs-train
# is the single-process program and libcs never depends on MPI.
MPI_PC ?= ompi-c
HAVE_MPI := $(if $(MPI_PC),$(shell $(PKGCONFIG) --exists $(MPI_PC) 2>/dev/null && echo 1))
MPI_CFLAGS := $(if $(HAVE_MPI),$(shell $(PKGCONFIG) --cflags $(MPI_PC)) -DCS_MPI)
MPI_LIBS := $(if $(HAVE_MPI),$(shell $(PKGCONFIG) --libs $(MPI_PC)))

# SANITIZE=address,undefined: any -fsanitize= list. Undefined behaviour
# aborts (no recovery) so that a test cannot pass over it.
ifneq ($(SANITIZE),)
SANFLAGS = -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
CFLAGS += $(SANFLAGS)
LDFLAGS += $(SANFLAGS)
endif

ALL_CFLAGS = $(WARN) $(CFLAGS) $(DEPS_CFLAGS) $(CPPFLAGS)

# BUILD=DIR puts objects, libcs.a, programs and tests under DIR instead of
# the top directory (check-sanitize and fuzz build there). Every output
# depends on DIR/.build-flags, rewritten only when the compiler or flags
# change, so switching SANITIZE (or CC, CFLAGS) rebuilds everything rather
# than linking objects of two builds together.
B := $(if $(BUILD),$(patsubst %/,%,$(BUILD))/)
FLAGS_STAMP := $(B).build-flags

LIB_SRC := $(filter-out lib/comm_mpi.c,$(sort $(wildcard lib/*.c)))
LIB_OBJ := $(patsubst %.c,$(B)%.o,$(LIB_SRC))
LIBCS := $(B)libcs.a
CMD_SRC := $(sort $(wildcard cmd/cs-*.c))
PROGS := $(patsubst cmd/%.c,%,$(CMD_SRC))
TEST_SRC := $(sort $(wildcard tests/check_*.c))
TESTS := $(TEST_SRC:.c=)
FUZZ_TARGETS := ingest stream vocab model text
REPLAYS := $(addprefix tests/fuzz/replay-,$(FUZZ_TARGETS))
# The installed headers, under $(INCDIR)/cs (#include <cs/cs.h>): streams,
# ingest, times, vocabularies, text, splits, masking, labels, metrics and
# their RNG. The model's headers (model.h, nn.h, train.h, ...) stay private
# while the model's shape changes.
PUBLIC_H := lib/cs.h lib/ingest.h lib/time.h lib/vocab.h lib/text.h lib/split.h lib/mask.h \
	lib/label.h lib/metrics.h lib/rng.h
MAN1 := $(sort $(wildcard man/*.1))
MAN5 := $(sort $(wildcard man/*.5))
MAN7 := $(sort $(wildcard man/*.7))

all: $(addprefix $(B),$(PROGS)) $(LIBCS) cs.pc

deps:
	@sh scripts/deps.sh

$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@f='$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(LIBS) $(MPI_CFLAGS) $(MPI_LIBS)'; \
	if [ "$$(cat $@ 2>/dev/null)" != "$$f" ]; then \
		[ -f $@ ] && echo "flags changed: rebuilding $(or $(BUILD),.)"; \
		echo "$$f" > $@; fi

$(B)lib/%.o: lib/%.c lib/*.h $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBCS): $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

$(B)cs-%: cmd/cs-%.c cmd/common.c cmd/common.h $(LIBCS) lib/*.h
	$(CC) $(ALL_CFLAGS) -Icmd $(LDFLAGS) -o $@ $< cmd/common.c $(LIBCS) $(LIBS)

ifneq ($(HAVE_MPI),)
$(B)cs-train: cmd/cs-train.c lib/comm_mpi.c cmd/common.c cmd/common.h $(LIBCS) lib/*.h
	$(CC) $(ALL_CFLAGS) $(MPI_CFLAGS) -Icmd $(LDFLAGS) -o $@ $< lib/comm_mpi.c cmd/common.c \
		$(LIBCS) $(MPI_LIBS) $(LIBS)
endif

$(B)tests/check_%: tests/check_%.c $(LIBCS) lib/*.h $(wildcard tests/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIBCS) $(CHECK_LIBS) $(LIBS)

# Rewritten every time, so that it names the directories of this make.
# libcs is static only, so its dependencies go in Libs (Libs.private is
# read only by pkg-config --static): pkg-config --libs cs links.
cs.pc: FORCE
	printf 'prefix=%s\nlibdir=%s\nincludedir=%s\n\nName: cs\nDescription: clickstream Transformer toolkit library\nVersion: %s\nLibs: -L$${libdir} -lcs %s\nCflags: -I$${includedir}\n' \
		'$(PREFIX)' '$(LIBDIR)' '$(INCDIR)' '$(VERSION)' '$(OMP) $(LIBS)' > $@

# make check installs nothing; 'make deps check' installs first, even under -j.
check: | $(filter deps,$(MAKECMDGOALS))
	$(MAKE) all $(TESTS) $(REPLAYS)
	sh tests/run.sh

# The fast tests (unit tests and the fuzz regression files) under
# sanitizers, built apart in build/sanitize so that the normal build stays.
SANITIZE_CHECK ?= address,undefined
check-sanitize: | $(filter deps,$(MAKECMDGOALS))
	$(MAKE) BUILD=build/sanitize SANITIZE=$(SANITIZE_CHECK) \
		$(addprefix build/sanitize/,$(TESTS) $(REPLAYS))
	sh tests/run.sh --unit build/sanitize

# ---- fuzzing (README, Building)
# Each target's bytes go through one loader; tests/fuzz/replay.c feeds the
# files of tests/fuzz/corpus and tests/fuzz/regress to the same function
# in a normal build, so every crash found stays a test of make check.
FUZZ_CC ?= clang
FUZZ_TIME ?= 60
FUZZ_DIR := build/fuzz

$(B)tests/fuzz/replay-%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(LIBCS) lib/*.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ tests/fuzz/replay.c $< $(LIBCS) $(LIBS)

$(B)tests/fuzz/fuzz-%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(LIBCS) lib/*.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(LIBCS) $(LIBS)

# libFuzzer (clang) needs the library built with the same instrumentation.
fuzz-build:
	@sh scripts/deps.sh fuzz
	$(MAKE) BUILD=$(FUZZ_DIR) CC=$(FUZZ_CC) OPT=-O1 \
		SANITIZE=fuzzer-no-link,address,undefined \
		$(addprefix $(FUZZ_DIR)/tests/fuzz/fuzz-,$(FUZZ_TARGETS))

# Run every target for FUZZ_TIME seconds (FUZZ_TARGETS= picks some).
fuzz: fuzz-build
	sh tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_TIME) $(FUZZ_TARGETS)

lint-man:
	mandoc -Tlint -Wwarning $(MAN1) $(MAN5) $(MAN7)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)/cs \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(PROGS) $(DESTDIR)$(BINDIR)
	install -m 755 scripts/nightly-retrain.sh $(DESTDIR)$(BINDIR)/cs-nightly-retrain
	install -m 644 libcs.a $(DESTDIR)$(LIBDIR)
	install -m 644 $(PUBLIC_H) $(DESTDIR)$(INCDIR)/cs
	install -m 644 cs.pc $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5
	install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7

# Removes what install put there (the same PREFIX, LIBDIR, DESTDIR).
uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(PROGS) cs-nightly-retrain) $(DESTDIR)$(LIBDIR)/libcs.a \
		$(addprefix $(DESTDIR)$(INCDIR)/cs/,$(notdir $(PUBLIC_H))) \
		$(DESTDIR)$(LIBDIR)/pkgconfig/cs.pc \
		$(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man7/,$(notdir $(MAN7)))
	rmdir $(DESTDIR)$(INCDIR)/cs 2>/dev/null || true

bench-ingest: all
	sh scripts/bench-ingest.sh

clean:
	rm -f lib/*.o libcs.a cs.pc .build-flags $(PROGS) $(TESTS) $(REPLAYS)
	rm -rf tests/tmp build

FORCE:

.PHONY: all deps check check-sanitize fuzz fuzz-build lint-man install uninstall bench-ingest clean FORCE
.SECONDARY:
