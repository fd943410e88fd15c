# make install into a temporary DESTDIR: one public header set under
# include/cs, a pkg-config file whose --cflags --libs build a program
# against the installed library (LIBDIR honoured), and make uninstall.
. tests/lib.sh
command -v pkg-config >/dev/null || { echo "skip: no pkg-config"; exit 0; }
[ -x ./cs-cat ] || { echo "skip: cs-cat not built"; exit 0; }

R=$T/root
P=/opt/cs LD=/opt/cs/lib64/x
make -s install DESTDIR="$R" PREFIX=$P LIBDIR=$LD > "$T/make.log" 2>&1 || { cat "$T/make.log" >&2; die "make install"; }
[ -f "$R$LD/libcs.a" ] || die "libcs.a not in LIBDIR"
[ -f "$R$LD/pkgconfig/cs.pc" ] || die "cs.pc not in LIBDIR/pkgconfig"
[ -x "$R$P/bin/cs-ingest" ] || die "no cs-ingest in bin"
[ -f "$R$P/share/man/man1/cs-ingest.1" ] && [ -f "$R$P/share/man/man7/cs.7" ] || die "no man page"
[ -f "$R$P/include/cs/cs.h" ] || die "no include/cs/cs.h"
for h in model.h nn.h blas.h batch.h score_impl.h; do
	[ ! -e "$R$P/include/cs/$h" ] || die "private header $h installed"
done
[ -z "$(find "$R$P/include" -maxdepth 1 -type f)" ] || die "headers outside include/cs"
ok "make install: programs, library, pc file in LIBDIR, public headers under include/cs"

export PKG_CONFIG_PATH="$R$LD/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$R"
expect_eq "$(pkg-config --modversion cs)" "$(sed -n 's/^VERSION = //p' Makefile)" "pkg-config version"
flags=$(pkg-config --cflags --libs cs) || die "pkg-config --cflags --libs cs"
# Every installed header compiles on its own.
for h in "$R$P"/include/cs/*.h; do
	printf '#include <cs/%s>\nint main(void) { return 0; }\n' "${h##*/}" > "$T/h.c"
	${CC:-cc} -std=c11 -D_GNU_SOURCE -Wall -Werror -c -o "$T/h.o" "$T/h.c" $flags ||
		die "<cs/${h##*/}> does not compile alone"
done
cat > "$T/reader.c" <<'EOC'
#include <stdio.h>
#include <cs/cs.h>

/* Count the records and events of a stream and print its first field's name. */
int main(int argc, char **argv)
{
	cs_error err;
	cs_record rec = { 0 };
	unsigned long long records = 0, events = 0;
	cs_reader *r = cs_reader_open(argc > 1 ? argv[1] : "-", &err);
	if (!r)
		goto fail;
	int rc;
	while ((rc = cs_reader_next(r, &rec, &err)) > 0) {
		records++;
		events += rec.nevents;
	}
	if (rc < 0)
		goto fail;
	printf("%s %llu %llu\n", cs_reader_schema(r)->f[0].name, records, events);
	cs_record_free(&rec);
	cs_reader_close(r);
	return 0;
fail:
	fprintf(stderr, "reader: %s\n", err.msg);
	return 1;
}
EOC
# shellcheck disable=SC2086
${CC:-cc} -std=c11 -D_GNU_SOURCE -Wall -o "$T/reader" "$T/reader.c" $flags ||
	die "cannot build a reader with pkg-config --cflags --libs cs"
printf 'user:seq:string\titem:event:string\nu1\ta\nu1\tb\nu2\tc\n' | cs-cat -r -o "$T/s.cseq" ||
	die "cs-cat -r"
expect_eq "$("$T/reader" "$T/s.cseq")" "user 2 3" "the reader's counts"
ok "a reader built with pkg-config --cflags --libs cs reads a stream"

make -s uninstall DESTDIR="$R" PREFIX=$P LIBDIR=$LD > "$T/make.log" 2>&1 || { cat "$T/make.log" >&2; die "make uninstall"; }
left=$(find "$R" -type f)
[ -z "$left" ] || die "make uninstall left: $left"
ok "make uninstall removes every installed file"
