/*
 * ofile.c - output files written atomically: a temporary file, then rename.
 *
 * Where Linux allows it (O_TMPFILE and /proc mounted), the data goes to a
 * file without a name in the target's directory; cs_ofile_commit names it
 * PATH.tmp.XXXXXX and at once renames that over PATH, so a process killed
 * at any moment (SIGKILL included) leaves no half-written file, under the
 * final name or any other. Elsewhere the temporary file has the name
 * PATH.tmp.XXXXXX from the start: signals that can be caught remove it,
 * SIGKILL cannot.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cs.h"

#define SUFFIX ".tmp.XXXXXX"

/*
 * Temporary names that exist on disk, so that a signal handler can unlink
 * them. Slots are claimed and released by the owning thread; the handler
 * only reads them.
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

/* A file without a name in path's directory, or -1 where there is none. */
static int open_anonymous(const char *path)
{
#ifdef O_TMPFILE
	/* commit links it through /proc: without /proc it could not be named */
	if (access("/proc/self/fd", X_OK) != 0)
		return -1;
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return -1;
	int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
	free(dir);
	return fd;
#else
	(void)path;
	return -1;
#endif
}

/* Whether fd is a file without a name (O_TMPFILE, not linked yet). */
static int anonymous(FILE *fp)
{
	struct stat st;
	return fp && fp != stdout && fstat(fileno(fp), &st) == 0 && st.st_nlink == 0;
}

/* Give the anonymous file fd the name tmp (its X's replaced); 0 or -1. */
static int link_anonymous(int fd, char *tmp)
{
	static const char az[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	static unsigned counter;
	char proc[64];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t h = CS_HASH64_INIT;
	pid_t pid = getpid();
	h = cs_hash64(&pid, sizeof pid, h);
	h = cs_hash64(&ts, sizeof ts, h);
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	char *x = tmp + strlen(tmp) - 6;
	for (int tries = 0; tries < 100; tries++) {
		unsigned c = counter++;
		h = cs_hash64(&c, sizeof c, h);
		uint64_t r = h;
		for (int i = 0; i < 6; i++, r /= 62)
			x[i] = az[r % 62];
		if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	return -1;
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
	of->tmp = malloc(n + sizeof SUFFIX);
	if (!of->path || !of->tmp) {
		free(of->path);
		free(of->tmp);
		of->path = of->tmp = NULL;
		return cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory");
	}
	memcpy(of->tmp, path, n);
	memcpy(of->tmp + n, SUFFIX, sizeof SUFFIX);
	int fd = open_anonymous(path);
	if (fd < 0) {
		if ((fd = mkstemp(of->tmp)) < 0) {
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
	}
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
	int anon = anonymous(of->fp), named = !anon;
	if (!rc && fsync(fileno(of->fp)) != 0 && errno != EINVAL)
		rc = -1, e = errno;
	if (anon) {
		/* named and renamed at once: only this instant leaves a file behind a kill */
		if (!rc && link_anonymous(fileno(of->fp), of->tmp) < 0)
			rc = -1, e = errno;
		else if (!rc)
			named = 1, temp_register(of->tmp);
		if (!rc && rename(of->tmp, of->path) != 0)
			rc = -1, e = errno;
		if (fclose(of->fp) != 0 && !rc)
			rc = -1, e = errno;
	} else {
		if (fclose(of->fp) != 0 && !rc)
			rc = -1, e = errno;
		if (!rc && rename(of->tmp, of->path) != 0)
			rc = -1, e = errno;
	}
	of->fp = NULL;
	if (rc) {
		cs_err(err, CS_ERR_IO, of->path, 0, "cannot write: %s", strerror(e ? e : EIO));
		if (named)
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
	int anon = anonymous(of->fp);
	if (of->fp && of->fp != stdout)
		fclose(of->fp); /* an anonymous file goes with its last descriptor */
	else if (of->fp)
		fflush(of->fp);
	of->fp = NULL;
	if (of->tmp) {
		if (!anon)
			unlink(of->tmp);
		temp_forget(of->tmp);
	}
	free(of->tmp);
	free(of->path);
	of->tmp = of->path = NULL;
}

/* The directory part of path ("." if none), or NULL. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
}

int cs_ofile_check(const char *path, cs_error *err)
{
	struct stat st;
	if (!strcmp(path, "-"))
		return 0;
	if (!*path)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "empty output file name");
	int there = stat(path, &st) == 0;
	if (path[strlen(path) - 1] == '/' || (there && S_ISDIR(st.st_mode)))
		return cs_err(err, CS_ERR_USAGE, path, 0, "cannot write: is a directory");
	/* a device or FIFO is written in place (cs_ofile_open) */
	if (there && !S_ISREG(st.st_mode))
		return access(path, W_OK) == 0 ? 0 : cs_err(err, CS_ERR_IO, path, 0,
							    "cannot open: %s", strerror(errno));
	char *dir = dir_of(path);
	if (!dir)
		return cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory");
	int rc = 0;
	if (stat(dir, &st) < 0)
		rc = cs_err(err, CS_ERR_IO, path, 0, "cannot create: directory '%s': %s", dir,
			    strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		rc = cs_err(err, CS_ERR_IO, path, 0, "cannot create: '%s' is not a directory", dir);
	else if (access(dir, W_OK | X_OK) < 0)
		rc = cs_err(err, CS_ERR_IO, path, 0, "cannot create: directory '%s': %s", dir,
			    strerror(errno));
	free(dir);
	return rc;
}

int cs_ofile_same(const char *a, const char *b)
{
	struct stat sa, sb;
	if (!strcmp(a, b))
		return 1;
	if (!strcmp(a, "-") || !strcmp(b, "-"))
		return 0;
	if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	/* not both there yet: the same last component in the same directory */
	const char *ba = strrchr(a, '/'), *bb = strrchr(b, '/');
	ba = ba ? ba + 1 : a;
	bb = bb ? bb + 1 : b;
	char *da = dir_of(a), *db = dir_of(b);
	int same = da && db && !strcmp(ba, bb) && stat(da, &sa) == 0 && stat(db, &sb) == 0 &&
		   sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	free(da);
	free(db);
	return same;
}
