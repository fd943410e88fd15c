/* ofile.c - output files written atomically: a temporary name, then rename. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cs.h"

/*
 * Temporary names still open, so that a signal handler can unlink them.
 * Slots are claimed and released by the owning thread; the handler only
 * reads them.
 */
#define MAX_TEMPS 64
static char *volatile temps[MAX_TEMPS];

static void temp_register(char *name)
{
	for (int i = 0; i < MAX_TEMPS; i++)
		if (!temps[i]) {
			temps[i] = name;
			return;
		}
}

static void temp_forget(const char *name)
{
	for (int i = 0; i < MAX_TEMPS; i++)
		if (temps[i] == name)
			temps[i] = NULL;
}

void cs_ofile_remove_temps(void)
{
	for (int i = 0; i < MAX_TEMPS; i++) {
		char *t = temps[i];
		if (t)
			unlink(t);
	}
}

int cs_ofile_open(cs_ofile *of, const char *path, cs_error *err)
{
	memset(of, 0, sizeof *of);
	if (!path || strcmp(path, "-") == 0) {
		of->fp = stdout;
		return 0;
	}
	/* A device or FIFO (/dev/null, a named pipe) is written in place. */
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (!(of->fp = fopen(path, "wb")))
			return cs_err(err, CS_ERR_IO, path, 0, "cannot open: %s", strerror(errno));
		of->path = NULL;
		of->tmp = NULL;
		of->dev = 1;
		return 0;
	}
	size_t n = strlen(path);
	of->path = strdup(path);
	of->tmp = malloc(n + 16);
	if (!of->path || !of->tmp) {
		free(of->path);
		free(of->tmp);
		return cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory");
	}
	memcpy(of->tmp, path, n);
	memcpy(of->tmp + n, ".tmp.XXXXXX", 12);
	int fd = mkstemp(of->tmp);
	if (fd < 0) {
		int e = errno;
		free(of->path);
		free(of->tmp);
		of->path = of->tmp = NULL;
		return cs_err(err, CS_ERR_IO, path, 0, "cannot create: %s", strerror(e));
	}
	temp_register(of->tmp);
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	if (!(of->fp = fdopen(fd, "wb"))) {
		int e = errno;
		close(fd);
		cs_ofile_abort(of);
		return cs_err(err, CS_ERR_IO, path, 0, "cannot open: %s", strerror(e));
	}
	return 0;
}

int cs_ofile_commit(cs_ofile *of, cs_error *err)
{
	int rc = 0, e = 0;
	if (!of->fp)
		return cs_err(err, CS_ERR_USAGE, of->path, 0, "file not open");
	if (fflush(of->fp) != 0 || ferror(of->fp))
		rc = -1, e = errno;
	if (of->dev) {
		if (fclose(of->fp) != 0 && !rc)
			rc = -1, e = errno;
		of->fp = NULL;
		of->dev = 0;
		return rc ? cs_err(err, CS_ERR_IO, "<device>", 0, "write error: %s",
				   strerror(e ? e : EIO)) : 0;
	}
	if (!of->tmp) { /* stdout */
		of->fp = NULL;
		return rc ? cs_err(err, CS_ERR_IO, "<stdout>", 0, "write error: %s",
				   strerror(e ? e : EIO)) : 0;
	}
	if (!rc && fsync(fileno(of->fp)) != 0 && errno != EINVAL)
		rc = -1, e = errno;
	if (fclose(of->fp) != 0 && !rc)
		rc = -1, e = errno;
	of->fp = NULL;
	if (!rc && rename(of->tmp, of->path) != 0)
		rc = -1, e = errno;
	if (rc) {
		cs_err(err, CS_ERR_IO, of->path, 0, "cannot write: %s", strerror(e ? e : EIO));
		unlink(of->tmp);
	}
	temp_forget(of->tmp);
	free(of->tmp);
	free(of->path);
	of->tmp = of->path = NULL;
	return rc;
}

void cs_ofile_abort(cs_ofile *of)
{
	if (!of)
		return;
	if (of->fp && of->fp != stdout)
		fclose(of->fp);
	else if (of->fp)
		fflush(of->fp);
	of->fp = NULL;
	if (of->tmp) {
		unlink(of->tmp);
		temp_forget(of->tmp);
	}
	free(of->tmp);
	free(of->path);
	of->tmp = of->path = NULL;
}
