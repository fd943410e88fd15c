/* cs-export - write a model's tensors, with names and shapes, as safetensors. */
#include <getopt.h>
#include <string.h>
#include "bertfile.h"
#include "common.h"
#include "export.h"

const char *progname = "cs-export";

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: cs-export [options] MODEL\n"
		"Write the tensors of a model or checkpoint of cs-train, with their names,\n"
		"shapes and the model's metadata, as safetensors (PyTorch, numpy).\n"
		"\n"
		"  -o, --output FILE  output file ('-': stdout) [-]\n"
		"      --optim        also the AdamW moments of a checkpoint [off]\n"
		"  -f, --force        write to a terminal [off]\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n");
}

int main(int argc, char **argv)
{
	enum { O_OPTIM = 256 };
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "optim", no_argument, NULL, O_OPTIM },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *out = "-";
	int optim = 0, force = 0, c;
	while ((c = getopt_long(argc, argv, "o:fhV", opts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case O_OPTIM: optim = 1; break;
		case 'f': force = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': print_version();
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		usage_error(optind < argc ? "one model at most" : "missing MODEL");
	if (check_binary_out(out, force) < 0)
		return EXIT_USAGE;
	const char *path = argv[optind];
	cs_error err;
	cs_modelfile *mf = NULL;
	cs_bert *m = NULL;
	cs_ofile of = { 0 };
	int opened = 0, rc = EXIT_DATA;
	if (!(mf = cs_modelfile_read(path, &err)))
		goto fail;
	/* files written before shapes were stored: from the model's configuration */
	const cs_bert_config *cfg = NULL;
	if (!cs_modelfile_get(mf, "shape.wte")) {
		uint64_t fp;
		if (!(m = cs_bert_from_file(mf, path, &fp, &err)))
			goto fail;
		cfg = &m->cfg;
	}
	if (cs_ofile_open(&of, out, &err) < 0)
		goto fail;
	opened = 1;
	if (cs_export_safetensors(mf, cfg, optim, of.fp, strcmp(out, "-") ? out : "stdout",
				  &err) < 0)
		goto fail;
	opened = 0;
	if (cs_ofile_commit(&of, &err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	report(&err);
out:
	if (opened)
		cs_ofile_abort(&of);
	cs_bert_free(m);
	cs_modelfile_free(mf);
	return rc;
}
