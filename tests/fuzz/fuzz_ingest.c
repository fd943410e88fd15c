/*
 * fuzz_ingest.c - the CSV ingest (cs_ingest on a file of the bytes).
 *
 *   byte 0  the mapping: 0-5 the presets (kaggle, amazon, pairs, seqlines,
 *           retail, diginetica), 6 a comma-separated mapping by column
 *           number with automatic times, 7 a tab-separated one without a
 *           header and a strptime pattern (bits 3-4: which pattern);
 *           bit 5 a min-count of 2 and a 2-core, bit 6 at most 3 tokens a
 *           field in the vocabulary built after
 *   byte 1  options, a bit each: by session, collapse repeats, a gap of
 *           60 s, two parser threads, a 4 KiB memory budget (runs spill to
 *           disk), strict, a minimum length of 2, 64-byte parse blocks (else 4 KiB)
 *   rest    the CSV; for diginetica a line "##" ends the views and the
 *           purchases follow
 *
 * Whatever it writes must read back as a stream with the counts it
 * reported; on failure it must leave no output, and never a spilled run.
 * The stream then goes through what follows an ingest in a pipeline: a
 * vocabulary of its string fields is built, written and read back, and
 * every record is encoded and decoded again, each value coming back as
 * it was or as [UNK].
 */
#include <dirent.h>
#include <sys/stat.h>
#include "cs.h"
#include "ingest.h"
#include "vocab.h"
#include "fuzz.h"

/* Files in the private directory other than the inputs and the output. */
static int stray_files(void)
{
	DIR *d = opendir(fuzz_tmpdir());
	FUZZ_ASSERT(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && strcmp(e->d_name, "in.csv") &&
		    strcmp(e->d_name, "in2.csv") && strcmp(e->d_name, "out.cseq"))
			n++;
	closedir(d);
	return n;
}

/* Read every record of the stream at path; n gets the count. */
static cs_record *read_records(const char *path, const cs_schema **schema, cs_reader **rp,
			       size_t *n)
{
	cs_error err;
	cs_reader *r = cs_reader_open(path, &err);
	FUZZ_ASSERT(r);
	cs_record *recs = NULL;
	size_t cap = 0;
	*n = 0;
	for (;;) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			recs = realloc(recs, cap * sizeof *recs);
			FUZZ_ASSERT(recs);
		}
		memset(&recs[*n], 0, sizeof *recs);
		int k = cs_reader_next(r, &recs[*n], &err);
		FUZZ_ASSERT(k >= 0);
		if (k == 0)
			break;
		FUZZ_ASSERT(recs[*n].nevents > 0);
		(*n)++;
	}
	cs_record_free(&recs[*n]);
	*schema = cs_reader_schema(r);
	*rp = r;
	return recs;
}

/* Build a vocabulary of every string field, round-trip it through its
 * file, and encode and decode each record with it. */
static void vocab_pipeline(const cs_schema *s, cs_record *recs, size_t n, int opt)
{
	const char *fields[CS_INGEST_MAX_KEEP + 8];
	size_t nf = 0;
	for (size_t i = 0; i < s->nfields && nf < sizeof fields / sizeof *fields; i++)
		if (s->f[i].type == CS_STRING)
			fields[nf++] = s->f[i].name;
	int have_item = cs_schema_find(s, "item") >= 0 &&
			s->f[cs_schema_find(s, "item")].level == CS_EVENT &&
			s->f[cs_schema_find(s, "item")].type == CS_STRING;
	cs_vocab_opts vo = { 0 };
	if ((opt & 32) && have_item) {
		vo.min_count = 2;
		vo.kcore = 2;
	}
	if (opt & 64)
		vo.max_size = 3;
	cs_error err;
	cs_vocab_builder *b = cs_vocab_builder_new(fields, nf, &vo, &err);
	FUZZ_ASSERT(b);
	FUZZ_ASSERT(cs_vocab_builder_bind(b, s, "fuzz", &err) == 0);
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT(cs_vocab_builder_add(b, &recs[i], &err) == 0);
	cs_vocab *v = cs_vocab_builder_finish(b, NULL, &err);
	cs_vocab_builder_free(b);
	if (!v) { /* a token a vocabulary file cannot hold (a tab, a line break) */
		FUZZ_ASSERT(err.code == CS_ERR_FORMAT && err.msg[0]);
		return;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	FUZZ_ASSERT(fp && cs_vocab_write_file(v, fp, "vocab", &err) == 0);
	fclose(fp);
	fp = fmemopen(text, len, "rb");
	cs_vocab *v2 = cs_vocab_read_file(fp, "vocab", &err);
	fclose(fp);
	free(text);
	FUZZ_ASSERT(v2 && cs_vocab_nfields(v2) == cs_vocab_nfields(v));
	for (size_t f = 0; f < cs_vocab_nfields(v); f++)
		FUZZ_ASSERT(cs_vocab_fingerprint(v2, f) == cs_vocab_fingerprint(v, f));
	cs_vocab_free(v2);

	cs_vocab_coder *enc = cs_vocab_coder_new(v, s, "fuzz", CS_VOCAB_ENCODE, NULL, &err);
	FUZZ_ASSERT(enc);
	cs_vocab_coder *dec = cs_vocab_coder_new(v, cs_vocab_coder_schema(enc), "fuzz",
						 CS_VOCAB_DECODE, NULL, &err);
	FUZZ_ASSERT(dec);
	cs_record e = { 0 }, d = { 0 };
	for (size_t i = 0; i < n; i++) {
		FUZZ_ASSERT(cs_vocab_coder_run(enc, &recs[i], &e, &err) == 1);
		FUZZ_ASSERT(cs_vocab_coder_run(dec, &e, &d, &err) == 1);
		FUZZ_ASSERT(d.nevents == recs[i].nevents && d.ncols == recs[i].ncols);
		for (size_t c = 0; c < d.ncols; c++) {
			const cs_column *a = &recs[i].col[c], *z = &d.col[c];
			FUZZ_ASSERT(a->type == z->type && a->n == z->n);
			if (a->type != CS_STRING)
				continue;
			for (size_t j = 0; j < a->n; j++) {
				size_t la, lz;
				const char *sa = cs_col_str(a, j, &la), *sz = cs_col_str(z, j, &lz);
				FUZZ_ASSERT((la == lz && !memcmp(sa, sz, la)) ||
					    (lz == 5 && !memcmp(sz, "[UNK]", 5)));
			}
		}
	}
	cs_record_free(&e);
	cs_record_free(&d);
	cs_vocab_coder_free(dec);
	cs_vocab_coder_free(enc);
	cs_vocab_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > (1u << 20))
		return 0;
	cs_ingest_opts o;
	cs_error err;
	cs_ingest_opts_init(&o);
	int preset = data[0] & 7, opt = data[1];
	const uint8_t *csv = data + 2;
	size_t n = size - 2;
	if (preset < 6) {
		FUZZ_ASSERT(cs_ingest_preset(&o, cs_ingest_presets[preset], &err) == 0);
	} else if (preset == 6) {
		o.map.user = "1";
		o.map.item = "2";
		o.map.action = "3";
		o.map.action_mode = CS_ACTION_COLUMN;
		o.map.time = "4";
		o.map.time_format = CS_TIME_AUTO;
		o.map.nkeep = 2;
		o.map.keep[0] = (cs_ingest_keep){ "n", "5", CS_INT64 };
		o.map.keep[1] = (cs_ingest_keep){ "x", "6", CS_FLOAT32 };
	} else {
		o.map.sep = '\t';
		o.map.header = 0;
		o.map.user = "1";
		o.map.session = "2";
		o.map.item = "3";
		o.map.time = "4";
		o.map.time_format = CS_TIME_PATTERN;
		static const char *pat[] = { "%d/%m/%Y %H:%M", "%s", "%Y-%m-%d %H:%M:%S", "%j %Y" };
		o.map.time_pattern = pat[(data[0] >> 3) & 3];
		o.map.time_offset = "5";
		o.map.nkeep = 1;
		o.map.keep[0] = (cs_ingest_keep){ NULL, "6", CS_STRING };
	}
	if (opt & 1)
		o.by = CS_BY_SESSION;
	o.collapse = !!(opt & 2);
	if ((opt & 4) && o.by == CS_BY_USER)
		o.gap = 60;
	o.threads = opt & 8 ? 2 : 1;
	o.mem = opt & 16 ? 4096 : 0;
	o.strict = !!(opt & 32);
	o.min_len = opt & 64 ? 2 : 0;
	/* 4 KiB parse blocks, not the automatic 4 MiB: the inputs are small,
	 * and a 4 MiB buffer a run cost most of its time (page faults) */
	o.block = opt & 128 ? 64 : 4096;
	o.tmpdir = fuzz_tmpdir();
	o.max_report = 0;

	const uint8_t *second = NULL;
	size_t n2 = 0;
	if (preset == 5) {
		const uint8_t *sep = memmem(csv, n, "\n##\n", 4);
		if (sep) {
			second = sep + 4;
			n2 = (size_t)(csv + n - second);
			n = (size_t)(sep - csv) + 1;
		}
	}
	const char *in = fuzz_file("in.csv", csv, n);
	if (second)
		o.second = fuzz_file("in2.csv", second, n2);
	char out[320];
	snprintf(out, sizeof out, "%s/out.cseq", fuzz_tmpdir());
	cs_ingest_stats st;
	cs_writer_opts wo = { 1, 0 };
	cs_writer *w = NULL;
	int rc = -1;
	cs_ingest *ing = cs_ingest_open(&o, &in, 1, &st, &err);
	if (ing && (w = cs_writer_open(out, cs_ingest_schema(ing), &wo, &err)) &&
	    cs_ingest_run(ing, w, &err) == 0) {
		rc = cs_writer_close(w, &err);
		w = NULL;
	}
	cs_writer_abort(w);
	cs_ingest_close(ing);
	struct stat sb;
	if (rc < 0) {
		FUZZ_ASSERT(err.code != CS_OK && err.msg[0]);
		FUZZ_ASSERT(stat(out, &sb) < 0);
	} else {
		const cs_schema *s;
		cs_reader *r;
		size_t nrec;
		cs_record *recs = read_records(out, &s, &r, &nrec);
		FUZZ_ASSERT(cs_reader_records(r) == st.sequences);
		FUZZ_ASSERT(cs_reader_events(r) == st.events);
		vocab_pipeline(s, recs, nrec, data[0]);
		for (size_t i = 0; i < nrec; i++)
			cs_record_free(&recs[i]);
		free(recs);
		cs_reader_close(r);
		unlink(out);
	}
	FUZZ_ASSERT(stray_files() == 0);
	return 0;
}
