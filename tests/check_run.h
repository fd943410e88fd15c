/* check_run.h - run one Check suite in fork mode; the exit status of a test program. */
#ifndef CS_CHECK_RUN_H
#define CS_CHECK_RUN_H

#include <check.h>

/* Run every test of s, each in its own process, so a crash fails one test. */
static inline int check_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

#endif
