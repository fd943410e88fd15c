/*
 * fuzz_model.c - the model loader: the bytes as a model file
 * (cs_modelfile_read and cs_modelfile_open of a temporary file), then
 * cs_bert_from_file.
 *
 * A file whose last 8 bytes are not the checksum of the rest is refused
 * before anything is parsed, so the target writes the checksum in unless
 * the first byte is 'X' (then the bytes go in as they are).
 */
#include "cs.h"
#include "bertfile.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	FUZZ_ASSERT(buf);
	if (size)
		memcpy(buf, data, size);
	if (size >= 8 && data[0] != 'X') {
		uint32_t version = 0;
		if (size >= 16) /* the version field past the magic, before the checksum */
			memcpy(&version, buf + 4, 4);
		uint64_t sum = cs_modelfile_checksum(version, buf, size - 8);
		memcpy(buf + size - 8, &sum, 8);
	}
	const char *path = fuzz_file("model.bin", buf, size);
	free(buf);
	/* copied out (cs_modelfile_read), then left in the file's image
	 * (cs_modelfile_open, as cs_bert_load does): the same verdicts */
	int ok[2];
	for (int lazy = 0; lazy < 2; lazy++) {
		cs_error err;
		cs_modelfile *mf = lazy ? cs_modelfile_open(path, &err) : cs_modelfile_read(path, &err);
		ok[lazy] = 0;
		if (!mf) {
			FUZZ_ASSERT(err.code != CS_OK && err.msg[0]);
			continue;
		}
		uint64_t fp;
		cs_bert *m = cs_bert_from_file(mf, path, &fp, &err);
		if (m) {
			ok[lazy] = 1;
			cs_bert_free(m);
		} else {
			FUZZ_ASSERT(err.code != CS_OK && err.msg[0]);
		}
		cs_modelfile_free(mf);
	}
	FUZZ_ASSERT(ok[0] == ok[1]);
	return 0;
}
