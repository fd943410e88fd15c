/*
 * bench-stream.c - throughput and compression of the sequence stream codec.
 *
 *   cc -O2 -iquote lib -o bench-stream scripts/bench-stream.c libcs.a \
 *      -lzstd -lcsv -lopenblas -lpthread -lm
 *   ./bench-stream [-n RECORDS] [-r RUNS] [-l LEVEL] [-d DIR]
 *   ./bench-stream -c FILE.cseq     (print its record and event counts)
 *
 * Builds RECORDS sessions of Kaggle-like events in memory, then, RUNS times,
 * writes them through cs_writer to a file in DIR and reads them back through
 * cs_reader. Two schemas: "full" (strings, ids, int64 and float32 as
 * cs-ingest keeps a Kaggle export) and "ids" (item id, action id and time
 * only, what training reads). Reports medians of MB/s of uncompressed
 * payload and the compression ratio. Payload counts 4 bytes per id or
 * float32, 8 per int64, and a string's bytes plus 4 for its length.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cs.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double unif(void) { return (rnd() >> 11) * 0x1.0p-53; }

static double normal(void)
{
	return sqrt(-2.0 * log(1.0 - unif())) * cos(6.283185307179586 * unif());
}

static void die(const char *what, const cs_error *err)
{
	char buf[1200];
	fprintf(stderr, "bench-stream: %s: %s\n", what,
		err ? cs_strerror(err, buf, sizeof buf) : "out of memory");
	exit(1);
}

/* ------------------------------------------------------------ data */

enum { NCODES = 128, NBRANDS = 512, NITEMS = 200000 };
static char codes[NCODES][48], brands[NBRANDS][16];

struct data {
	cs_schema *s;
	cs_record *rec;
	size_t n;
	uint64_t payload, events;
};

/* Zipf-like item rank: heavier head for smaller ranks. */
static uint32_t item_rank(void)
{
	return (uint32_t)(NITEMS * pow(unif(), 3.0));
}

static void add_payload(struct data *d, const cs_record *r)
{
	for (size_t c = 0; c < r->ncols; c++) {
		const cs_column *col = &r->col[c];
		switch (col->type) {
		case CS_STRING:
			d->payload += col->off[col->n] + 4 * (uint64_t)col->n;
			break;
		case CS_INT64:
			d->payload += 8 * (uint64_t)col->n;
			break;
		default:
			d->payload += 4 * (uint64_t)col->n;
		}
	}
	d->events += r->nevents;
}

/* Build n sessions; full adds the string, int64 and float32 columns. */
static void build(struct data *d, size_t n, int full)
{
	cs_error err;
	memset(d, 0, sizeof *d);
	rng_state = 42;
	if (!(d->s = cs_schema_new()))
		die("schema", NULL);
	if (full) {
		cs_schema_add(d->s, "session", CS_SEQ, CS_STRING, &err);
		cs_schema_add(d->s, "user", CS_SEQ, CS_ID, &err);
	}
	cs_schema_add(d->s, "item", CS_EVENT, CS_ID, &err);
	cs_schema_add(d->s, "action", CS_EVENT, CS_ID, &err);
	cs_schema_add(d->s, "time", CS_EVENT, CS_INT64, &err);
	if (full) {
		cs_schema_add(d->s, "category_id", CS_EVENT, CS_INT64, &err);
		cs_schema_add(d->s, "category_code", CS_EVENT, CS_STRING, &err);
		cs_schema_add(d->s, "brand", CS_EVENT, CS_STRING, &err);
		if (cs_schema_add(d->s, "price", CS_EVENT, CS_FLOAT32, &err) < 0)
			die("schema", &err);
	}
	if (!(d->rec = calloc(n, sizeof *d->rec)))
		die("records", NULL);
	d->n = n;
	int64_t t = 1569888000000LL; /* 2019-10-01 UTC, ms */
	for (size_t i = 0; i < n; i++) {
		cs_record *r = &d->rec[i];
		if (cs_record_init(r, d->s, &err) < 0)
			die("record", &err);
		double x = ceil(exp(0.9 + 1.2 * normal()));
		size_t len = x < 1 ? 1 : x > 500 ? 500 : (size_t)x;
		int c = 0;
		if (full) {
			char uuid[40];
			snprintf(uuid, sizeof uuid, "%08llx-%04llx-4%03llx-%04llx-%012llx",
				 (unsigned long long)(rnd() & 0xffffffff),
				 (unsigned long long)(rnd() & 0xffff),
				 (unsigned long long)(rnd() & 0xfff),
				 (unsigned long long)(0x8000 | (rnd() & 0x3fff)),
				 (unsigned long long)(rnd() & 0xffffffffffffULL));
			cs_col_push_str(&r->col[c++], uuid, 36);
			cs_col_push_u32(&r->col[c++], (uint32_t)(rnd() % 3000000) + 1);
		}
		t += (int64_t)(rnd() % 2000);
		int64_t te = t;
		for (size_t e = 0; e < len; e++) {
			uint32_t rank = item_rank();
			uint64_t h = rank * 0x9E3779B97F4A7C15ULL;
			double u = unif();
			uint32_t action = u < 0.92 ? 1 : u < 0.97 ? 2 : u < 0.98 ? 3 : 4;
			int k = c;
			if (cs_col_push_u32(&r->col[k++], rank + 1) < 0 ||
			    cs_col_push_u32(&r->col[k++], action) < 0 ||
			    cs_col_push_i64(&r->col[k++], te) < 0)
				die("push", NULL);
			te += 1000 * (int64_t)exp(2.7 + 1.2 * normal());
			if (full) {
				int cat = (int)(h >> 57);
				const char *code = (h >> 40 & 3) == 0 ? "" : codes[cat];
				const char *brand = (h >> 20 & 7) == 0 ? "" : brands[(h >> 8) % NBRANDS];
				if (cs_col_push_i64(&r->col[k++], 2053013552226107603LL + cat * 977) < 0 ||
				    cs_col_push_str(&r->col[k++], code, strlen(code)) < 0 ||
				    cs_col_push_str(&r->col[k++], brand, strlen(brand)) < 0 ||
				    cs_col_push_f32(&r->col[k++], (float)((h >> 32) % 100000) / 100.0f) < 0)
					die("push", NULL);
			}
		}
		r->nevents = len;
		add_payload(d, r);
	}
}

static void free_data(struct data *d)
{
	for (size_t i = 0; i < d->n; i++)
		cs_record_free(&d->rec[i]);
	free(d->rec);
	cs_schema_free(d->s);
}

/* ------------------------------------------------------------ runs */

static uint64_t file_size(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return 0;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fclose(fp);
	return n < 0 ? 0 : (uint64_t)n;
}

/* Write then read d once; seconds for each and the file size. */
static void run_once(const struct data *d, const char *path, int level,
		     double *wsec, double *rsec, uint64_t *bytes)
{
	cs_error err;
	cs_writer_opts wo = { .level = level, .threads = 0 };
	double t0 = cs_now();
	cs_writer *w = cs_writer_open(path, d->s, &wo, &err);
	if (!w)
		die("open for writing", &err);
	for (size_t i = 0; i < d->n; i++)
		if (cs_writer_put(w, &d->rec[i], &err) < 0)
			die("write", &err);
	if (cs_writer_close(w, &err) < 0)
		die("close", &err);
	*wsec = cs_now() - t0;
	*bytes = file_size(path);

	t0 = cs_now();
	cs_reader *r = cs_reader_open(path, &err);
	if (!r)
		die("open for reading", &err);
	cs_record rec;
	memset(&rec, 0, sizeof rec);
	uint64_t sum = 0;
	int rc;
	while ((rc = cs_reader_next(r, &rec, &err)) == 1)
		sum += rec.col[0].n; /* touch the record */
	if (rc < 0)
		die("read", &err);
	*rsec = cs_now() - t0;
	if (cs_reader_records(r) != d->n || cs_reader_events(r) != d->events) {
		fprintf(stderr, "bench-stream: read back %llu records and %llu events, wrote %zu and %llu\n",
			(unsigned long long)cs_reader_records(r),
			(unsigned long long)cs_reader_events(r), d->n,
			(unsigned long long)d->events);
		exit(1);
	}
	cs_reader_close(r);
	cs_record_free(&rec);
	(void)sum;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void bench(const char *name, size_t n, int full, int runs, int level,
		  const char *dir)
{
	struct data d;
	char path[1024];
	double w[64], r[64];
	uint64_t bytes = 0;
	build(&d, n, full);
	snprintf(path, sizeof path, "%s/bench-stream-%s.cseq", dir, name);
	for (int i = 0; i < runs; i++)
		run_once(&d, path, level, &w[i], &r[i], &bytes);
	unlink(path);
	double mw = median(w, runs), mr = median(r, runs), mb = d.payload / 1e6;
	printf("%-6s %9zu %10llu %11.1f %10.1f %10.1f %10.1f %7.2f\n", name, n,
	       (unsigned long long)d.events, mb, bytes / 1e6, mb / mw, mb / mr,
	       (double)d.payload / (double)bytes);
	fflush(stdout);
	free_data(&d);
}

/* Print the record and event counts of a stream. */
static int count(const char *path)
{
	cs_error err;
	cs_reader *r = cs_reader_open(path, &err);
	if (!r)
		die("open", &err);
	cs_record rec;
	memset(&rec, 0, sizeof rec);
	int rc;
	while ((rc = cs_reader_next(r, &rec, &err)) == 1)
		;
	if (rc < 0)
		die("read", &err);
	printf("records %llu\nevents %llu\n", (unsigned long long)cs_reader_records(r),
	       (unsigned long long)cs_reader_events(r));
	cs_reader_close(r);
	cs_record_free(&rec);
	return 0;
}

int main(int argc, char **argv)
{
	long n = 200000, runs = 5, level = 0;
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int opt;

	while ((opt = getopt(argc, argv, "n:r:l:d:c:h")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 'r': runs = atol(optarg); break;
		case 'l': level = atol(optarg); break;
		case 'd': dir = optarg; break;
		case 'c': return count(optarg);
		case 'h':
			printf("usage: bench-stream [-n RECORDS] [-r RUNS] [-l LEVEL] [-d DIR] | -c FILE\n"
			       "  -n RECORDS  sessions per stream [200000]\n"
			       "  -r RUNS     write and read runs, medians reported [5]\n"
			       "  -l LEVEL    zstd level, 0: the writer's default [0]\n"
			       "  -d DIR      where to write [$TMPDIR or /tmp]\n"
			       "  -c FILE     print the record and event counts of FILE\n");
			return 0;
		default:
			return 2;
		}
	}
	if (n < 1 || runs < 1 || runs > 64 || optind != argc) {
		fprintf(stderr, "bench-stream: bad arguments (try -h)\n");
		return 2;
	}
	for (int i = 0; i < NCODES; i++)
		snprintf(codes[i], sizeof codes[i], "top%d.sub%d.leaf%d", i % 13, i % 29, i);
	for (int i = 0; i < NBRANDS; i++)
		snprintf(brands[i], sizeof brands[i], "brand%x", i * 2654435761u);
	printf("cs stream codec: %ld runs, medians; zstd level %ld (0: default)\n", runs, level);
	printf("%-6s %9s %10s %11s %10s %10s %10s %7s\n", "schema", "records", "events",
	       "payload MB", "file MB", "write MB/s", "read MB/s", "ratio");
	bench("full", (size_t)n, 1, (int)runs, (int)level, dir);
	bench("ids", (size_t)n, 0, (int)runs, (int)level, dir);
	return 0;
}
