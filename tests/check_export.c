/* check_export.c - unit tests of tensor shapes in model files and of the safetensors export. */
#include <check.h>
#include "check_run.h"
#include <stdlib.h>
#include <string.h>
#include "bertfile.h"
#include "export.h"

/* Configurations that use every tensor between them. */
static void configs(cs_bert_config c[3])
{
	cs_bert_config_default(&c[0], 57);
	c[0].C = 8, c[0].L = 3, c[0].P = 11, c[0].FF = 20, c[0].NH = 2;
	c[1] = c[0];
	c[1].NF = 2, c[1].VF[0] = 7, c[1].VF[1] = 5, c[1].pred = 2;
	c[1].combine = CS_COMBINE_CONCAT;
	c[2] = c[1];
	c[2].head = CS_HEAD_SESSION, c[2].pred = 0;
}

/* The shapes' products are the sizes the model allocates, for every tensor used. */
START_TEST(test_shapes_match_sizes)
{
	cs_bert_config c[3];
	configs(c);
	for (int k = 0; k < 3; k++) {
		size_t sz[CS_BERT_NPARAMS];
		cs_bert_param_sizes(&c[k], sz);
		for (int i = 0; i < CS_BERT_NPARAMS; i++) {
			uint64_t d[3], n = 1;
			int rank = cs_bert_param_shape(&c[k], i, d);
			ck_assert(rank >= 1 && rank <= 3);
			for (int j = 0; j < rank; j++)
				n *= d[j];
			ck_assert_msg(!sz[i] || n == sz[i], "config %d, %s: shape gives %llu, size %zu",
				      k, cs_bert_param_name(i), (unsigned long long)n, sz[i]);
		}
	}
}
END_TEST

/* A model file carries "shape.NAME" for every tensor, and the export uses it. */
START_TEST(test_file_shapes_and_export)
{
	cs_bert_config c[3];
	configs(c);
	cs_error err;
	cs_bert *m = cs_bert_new(&c[1], 1, &err);
	ck_assert_msg(m != NULL, "%s", err.msg);
	cs_modelfile *mf = cs_bert_to_file(m, NULL, 42, 0, &err);
	ck_assert_ptr_nonnull(mf);
	ck_assert_str_eq(cs_modelfile_get(mf, "shape.wte"), "57,8");
	ck_assert_str_eq(cs_modelfile_get(mf, "shape.qkv_w"), "3,24,8");
	ck_assert_str_eq(cs_modelfile_get(mf, "shape.fte"), "12,8");
	ck_assert_str_eq(cs_modelfile_get(mf, "shape.in_w"), "8,24");
	ck_assert_str_eq(cs_modelfile_get(mf, "shape.fout_b"), "5");
	for (size_t i = 0; i < mf->ntensors; i++) {
		char key[300];
		snprintf(key, sizeof key, "shape.%s", mf->t[i].name);
		ck_assert_msg(cs_modelfile_get(mf, key) != NULL, "no %s", key);
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	ck_assert_int_eq(cs_export_safetensors(mf, NULL, 0, fp, "mem", &err), 0);
	fclose(fp);
	uint64_t n = 0;
	for (int k = 0; k < 8; k++)
		n |= (uint64_t)(unsigned char)buf[k] << (8 * k);
	ck_assert_uint_eq(n % 8, 0);
	ck_assert_uint_le(8 + n, len);
	const char *wte = "\"wte\":{\"dtype\":\"F32\",\"shape\":[57,8],\"data_offsets\":[0,1824]}";
	const char *meta = "{\"__metadata__\":{\"arch\":\"bert4rec\",";
	ck_assert_ptr_nonnull(memmem(buf + 8, n, wte, strlen(wte)));
	ck_assert_int_eq(memcmp(buf + 8, meta, strlen(meta)), 0);
	/* the values follow the header in tensor order, wte first */
	ck_assert_int_eq(memcmp(buf + 8 + n, m->params.wte, 57 * 8 * sizeof(float)), 0);
	ck_assert_uint_eq(len, 8 + n + 4 * m->nparams);
	free(buf);
	cs_modelfile_free(mf);
	cs_bert_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("export");
	TCase *tc = tcase_create("export");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_shapes_match_sizes);
	tcase_add_test(tc, test_file_shapes_and_export);
	suite_add_tcase(s, tc);
	return check_run(s);
}
