# cs - clickstream Transformer toolkit. See README.md.
CC ?= cc
PREFIX ?= /usr/local
BINDIR = $(PREFIX)/bin
LIBDIR = $(PREFIX)/lib
INCDIR = $(PREFIX)/include
MANDIR = $(PREFIX)/share/man
PKGCONFIG ?= pkg-config
VERSION = 0.1.0

OPT ?= -O2
CFLAGS ?= $(OPT) -g
WARN = -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter
# OpenMP threads the model's own loops (softmax rows, AdamW); OpenBLAS the products.
OMP ?= -fopenmp
CFLAGS += $(OMP)
LDFLAGS += $(OMP)
CPPFLAGS += -D_GNU_SOURCE -Ilib
DEPS_CFLAGS := $(shell $(PKGCONFIG) --cflags openblas libzstd check 2>/dev/null)
LIBS = -lopenblas -lcsv -lzstd -lpthread -lm
CHECK_LIBS := $(shell $(PKGCONFIG) --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)

ifneq ($(SANITIZE),)
SANFLAGS = -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
CFLAGS += $(SANFLAGS)
LDFLAGS += $(SANFLAGS)
endif

ALL_CFLAGS = $(WARN) $(CFLAGS) $(DEPS_CFLAGS) $(CPPFLAGS)

LIB_SRC := $(sort $(wildcard lib/*.c))
LIB_OBJ := $(LIB_SRC:.c=.o)
CMD_SRC := $(sort $(wildcard cmd/cs-*.c))
PROGS := $(patsubst cmd/%.c,%,$(CMD_SRC))
TEST_SRC := $(sort $(wildcard tests/check_*.c))
TESTS := $(TEST_SRC:.c=)
MAN1 := $(sort $(wildcard man/*.1))
MAN5 := $(sort $(wildcard man/*.5))

all: $(PROGS) libcs.a cs.pc

deps:
	@sh scripts/deps.sh

lib/%.o: lib/%.c lib/*.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

libcs.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

cs-%: cmd/cs-%.c cmd/common.c cmd/common.h libcs.a lib/*.h
	$(CC) $(ALL_CFLAGS) -Icmd $(LDFLAGS) -o $@ $< cmd/common.c libcs.a $(LIBS)

tests/check_%: tests/check_%.c libcs.a lib/*.h $(wildcard tests/*.h)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< libcs.a $(CHECK_LIBS) $(LIBS)

# Rewritten every time, so that it names the PREFIX of this make.
cs.pc: FORCE
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: cs\nDescription: clickstream Transformer toolkit library\nVersion: %s\nLibs: -L$${libdir} -lcs\nLibs.private: %s\nCflags: -I$${includedir}/cs\n' \
		'$(PREFIX)' '$(VERSION)' '$(OMP) $(LIBS)' > $@

check: deps
	$(MAKE) all $(TESTS)
	sh tests/run.sh

lint-man:
	mandoc -Tlint -Wwarning $(MAN1) $(MAN5)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)/cs \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 755 $(PROGS) $(DESTDIR)$(BINDIR)
	install -m 644 libcs.a $(DESTDIR)$(LIBDIR)
	install -m 644 lib/*.h $(DESTDIR)$(INCDIR)/cs
	install -m 644 cs.pc $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5

bench-ingest: all
	sh scripts/bench-ingest.sh

clean:
	rm -f lib/*.o libcs.a cs.pc $(PROGS) $(TESTS)
	rm -rf tests/tmp

FORCE:

.PHONY: all deps check lint-man install bench-ingest clean FORCE
.SECONDARY:
