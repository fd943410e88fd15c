/*
 * fuzz_model.c - the model loader: the bytes as a model file
 * (cs_modelfile_read of a temporary file), then cs_bert_from_file.
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
		uint64_t sum = cs_hash64(buf, size - 8, CS_HASH64_INIT);
		memcpy(buf + size - 8, &sum, 8);
	}
	const char *path = fuzz_file("model.bin", buf, size);
	free(buf);
	cs_error err;
	cs_modelfile *mf = cs_modelfile_read(path, &err);
	if (!mf) {
		FUZZ_ASSERT(err.code != CS_OK && err.msg[0]);
		return 0;
	}
	uint64_t fp;
	cs_bert *m = cs_bert_from_file(mf, path, &fp, &err);
	if (m)
		cs_bert_free(m);
	else
		FUZZ_ASSERT(err.code != CS_OK && err.msg[0]);
	cs_modelfile_free(mf);
	return 0;
}
