/*
 * fuzz.h - what the fuzz targets share: the libFuzzer entry point and a
 * private temporary directory for the loaders that want a file name.
 * Each fuzz_<name>.c is linked either with libFuzzer (make fuzz) or with
 * replay.c (make check), which feeds it the files of the corpus and of
 * the regression directory.
 */
#ifndef CS_FUZZ_H
#define CS_FUZZ_H

#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[256];

static inline int fuzz_rm1(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p) < 0 ? -1 : 0;
}

static inline void fuzz_rmdir(void)
{
	if (fuzz_dir[0] && nftw(fuzz_dir, fuzz_rm1, 8, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "fuzz: cannot remove %s\n", fuzz_dir);
}

/* A directory of this process, removed at exit. */
static inline const char *fuzz_tmpdir(void)
{
	if (!fuzz_dir[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(fuzz_dir, sizeof fuzz_dir, "%s/cs-fuzz.XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(fuzz_dir)) {
			perror("fuzz: mkdtemp");
			abort();
		}
		atexit(fuzz_rmdir);
	}
	return fuzz_dir;
}

/* Write data to name in the private directory; returns the path (static). */
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t size)
{
	static char path[4][320];
	static int k;
	char *p = path[k++ & 3];
	snprintf(p, sizeof path[0], "%s/%s", fuzz_tmpdir(), name);
	FILE *fp = fopen(p, "wb");
	if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0) {
		perror(p);
		abort();
	}
	return p;
}

/* An invariant of the library does not hold: a bug, report it as a crash. */
#define FUZZ_ASSERT(c)                                                          \
	do {                                                                    \
		if (!(c)) {                                                     \
			fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n",  \
				__FILE__, __LINE__, #c);                        \
			abort();                                                \
		}                                                               \
	} while (0)

#endif
