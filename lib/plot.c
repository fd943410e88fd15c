/*
 * plot.c - gnuplot scripts for the statistics of a stream and for the
 * training curves of a cs-train log. Every plot is drawn twice, by the
 * pngcairo and svg terminals, at the same size and in the same style.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "plot.h"
#include "stats.h"

/* Write s as a gnuplot single-quoted string ('' for a quote). */
static void put_quoted(FILE *fp, const char *s)
{
	putc('\'', fp);
	for (; *s; s++) {
		if (*s == '\'')
			putc('\'', fp);
		if ((unsigned char)*s >= 0x20)
			putc(*s, fp);
	}
	putc('\'', fp);
}

static void preamble(FILE *fp)
{
	fputs("set datafile separator \"\\t\"\n"
	      "set datafile columnheaders\n"
	      "set border 3 lw 1.2\n"
	      "set tics nomirror out\n"
	      "set grid xtics ytics mxtics mytics lc rgb '#d8d8d8' lw 1, lc rgb '#eeeeee' lw 1\n"
	      "set key top right noautotitle opaque box lc rgb '#bbbbbb'\n"
	      "set style fill solid 0.85 noborder\n"
	      "set linetype 1 lc rgb '#1f77b4' lw 2 pt 7 ps 0.8\n"
	      "set linetype 2 lc rgb '#ff7f0e' lw 2 pt 5 ps 0.8\n"
	      "set linetype 3 lc rgb '#2ca02c' lw 2 pt 9 ps 0.8\n"
	      "set linetype 4 lc rgb '#d62728' lw 2 pt 11 ps 0.8\n"
	      "set title font ',13'\n"
	      "set format y '%.0s%c'\n", fp);
	fprintf(fp, "W = %d; H = %d\n", CS_PLOT_WIDTH, CS_PLOT_HEIGHT);
	fputs("# counts on a linear axis in units, thousands or millions\n"
	      "unit(m) = m >= 2e6 ? 1e6 : m >= 2e4 ? 1e3 : 1\n"
	      "uname(m) = m >= 2e6 ? ' (millions)' : m >= 2e4 ? ' (thousands)' : ''\n", fp);
	fputs("# setterm(ext): the terminal of a .png or .svg file\n"
	      "setterm(ext) = (ext eq 'png') ? \\\n"
	      "  sprintf(\"set terminal pngcairo size %d,%d font 'DejaVu Sans,11' noenhanced\", W, H) : \\\n"
	      "  sprintf(\"set terminal svg size %d,%d font 'DejaVu Sans,11' noenhanced background rgb 'white'\", W, H)\n",
	      fp);
}

int cs_plot_stats_script(FILE *fp, unsigned have, const char *title, cs_error *err)
{
	fputs("# Plots of a stream's statistics (cs-stats --plot).\n", fp);
	preamble(fp);
	fputs("name = ", fp);
	put_quoted(fp, title ? title : "stream");
	fputs("\n", fp);
	fputs("do for [ext in 'png svg'] {\n"
	      "eval setterm(ext)\n", fp);
	if (have & CS_PLOT_LENGTH)
		fputs("unset key\n"
		      "set output 'length.'.ext\n"
		      "set title sprintf('Sequence lengths of %s', name)\n"
		      "set xlabel 'events in the sequence'\n"
		      "set ylabel 'sequences'\n"
		      "set logscale xy\n"
		      "set format x '%g'\n"
		      "set xrange [0.8:*]; set yrange [0.8:*]\n"
		      "plot 'length.tsv' using 1:2 with points lt 1 pt 7 ps 0.7\n"
		      "unset logscale; set xrange [*:*]; set yrange [*:*]; set format x '% h'\n", fp);
	if (have & CS_PLOT_POPULARITY)
		fputs("set output 'popularity.'.ext\n"
		      "set title sprintf('Item popularity of %s (log-log)', name)\n"
		      "set xlabel 'item rank, most frequent first'\n"
		      "set ylabel 'events on the item'\n"
		      "set logscale xy\n"
		      "set format x '%.0s%c'\n"
		      "set xrange [0.8:*]; set yrange [0.8:*]\n"
		      "plot 'popularity.tsv' using 1:2 with lines lt 1 lw 2.5\n"
		      "unset logscale; set xrange [*:*]; set yrange [*:*]; set format x '% h'\n", fp);
	if (have & CS_PLOT_DAY)
		fputs("set output 'day.'.ext\n"
		      "set title sprintf('Events per day of %s (UTC)', name)\n"
		      "set xlabel 'day'\n"
		      "stats 'day.tsv' using 2 nooutput\n"
		      "ndays = STATS_records; every = ceil(ndays / 31.0); u = unit(STATS_max)\n"
		      "set ylabel 'events'.uname(STATS_max); set format y '%g'\n"
		      "set xrange [-0.7:ndays - 0.3]; set yrange [0:*]\n"
		      "set boxwidth 0.8\n"
		      "set grid noxtics nomxtics\n"
		      "set xtics rotate by -45 scale 0\n"
		      "plot 'day.tsv' using 0:($2 / u):xtic(int($0) % every == 0 ? strcol(1) : '') with boxes lt 1\n"
		      "set xrange [*:*]; set yrange [*:*]; set grid xtics mxtics\n"
		      "set xtics norotate scale default; set boxwidth\n"
		      "set output 'hour.'.ext\n"
		      "set title sprintf('Events per hour of the day of %s (UTC)', name)\n"
		      "set xlabel 'hour (UTC)'\n"
		      "stats 'hour.tsv' using 2 nooutput; u = unit(STATS_max)\n"
		      "set ylabel 'events'.uname(STATS_max)\n"
		      "set xrange [-0.7:23.7]; set xtics 0, 1, 23 scale 0; set yrange [0:*]\n"
		      "set grid noxtics nomxtics\n"
		      "set boxwidth 0.8\n"
		      "plot 'hour.tsv' using 1:($2 / u) with boxes lt 1\n"
		      "set xrange [*:*]; set xtics autofreq scale default; set yrange [*:*]; set boxwidth\n"
		      "set grid xtics mxtics\n", fp);
	if (have & CS_PLOT_FUNNEL)
		fputs("set key\n"
		      "set output 'funnel.'.ext\n"
		      "set title sprintf('Funnel of %s: sessions and users with at least one event of each type', name)\n"
		      "set xlabel 'event type'\n"
		      "stats 'funnel.tsv' using 'sessions' nooutput; u = unit(STATS_max)\n"
		      "set ylabel 'sessions or users'.uname(STATS_max); set format y '%g'\n"
		      "set style data histograms\n"
		      "set style histogram clustered gap 1\n"
		      "set boxwidth 0.9\n"
		      "set yrange [0:*]; set offsets 0, 0, graph 0.12, 0\n"
		      "set grid noxtics nomxtics\n"
		      "set key top right\n"
		      "plot 'funnel.tsv' using (column('sessions') / u):xtic(1) title 'sessions' lt 1, \\\n"
		      "     '' using (column('users') / u) title 'users' lt 2, \\\n"
		      "     '' using ($0 - 1.0/6):(column('sessions') / u):(column('sessions') == column('sessions') ? sprintf(\"%d\\n%.1f%%\", column('sessions'), 100 * column('session_share')) : '') \\\n"
		      "        with labels offset 0, 1.6 font ',10', \\\n"
		      "     '' using ($0 + 1.0/6):(column('users') / u):(column('users') == column('users') ? sprintf(\"%d\\n%.1f%%\", column('users'), 100 * column('user_share')) : '') \\\n"
		      "        with labels offset 0, 1.6 font ',10'\n"
		      "set style data points; set yrange [*:*]; set offsets 0, 0, 0, 0\n"
		      "set grid xtics mxtics\n", fp);
	fputs("set output\n"
	      "}\n", fp);
	(void)err;
	return 0;
}

/* The training loss against x: step rows as a line, epoch rows as points on a line. */
static void loss_plot(FILE *fp, const char *x, int steps, int epochs)
{
	fputs("plot ", fp);
	if (steps)
		fprintf(fp, "$steps using %s:'loss' with lines lt 1 lw 1.2 "
			"title 'last steps'%s", x,
			epochs ? ", \\\n     " : "");
	if (epochs)
		fprintf(fp, "$epochs using %s:'loss' with linespoints lt 2 title 'epoch'", x);
	fputc('\n', fp);
}

/* A gnuplot datablock: the header, then rows. */
static void datablock(FILE *fp, const char *name, const char *header, const char *rows, size_t n)
{
	fprintf(fp, "$%s << EOD\n%s\n", name, header);
	fwrite(rows, 1, n, fp);
	fputs("EOD\n", fp);
}

int cs_plot_train_script(FILE *fp, const char *log, cs_error *err)
{
	FILE *in = fopen(log, "r");
	if (!in)
		return cs_err(err, CS_ERR_IO, log, 0, "cannot open: %s", strerror(errno));
	char *line = NULL, *row = NULL, *buf[3] = { NULL, NULL, NULL };
	size_t cap = 0, rcap = 0, len[3] = { 0, 0, 0 };
	FILE *blk[3] = { NULL, NULL, NULL };
	int cnt[3] = { 0, 0, 0 }, rc = -1;
	double elapsed = 0;
	enum { STEPS, EPOCHS, VALID };
	ssize_t n = getline(&line, &cap, in);
	if (n <= 0) {
		if (ferror(in))
			cs_err(err, CS_ERR_IO, log, 0, "read error: %s", strerror(errno));
		else
			cs_err(err, CS_ERR_FORMAT, log, 1, "empty training log");
		goto out;
	}
	if (strncmp(line, "epoch\tstep\tloss\t", 16) != 0) {
		cs_err(err, CS_ERR_FORMAT, log, 1,
		       "not the TSV log of cs-train --log (a --log-json log cannot be plotted)");
		goto out;
	}
	for (int i = 0; i < 3; i++)
		if (!(blk[i] = open_memstream(&buf[i], &len[i]))) {
			cs_err(err, CS_ERR_NOMEM, log, 0, "out of memory");
			goto out;
		}
	/* Step rows (--log-every) have a fractional epoch, epoch rows a whole one. */
	ssize_t k;
	while ((k = getline(&row, &rcap, in)) > 0) {
		size_t d = strspn(row, "0123456789");
		if (!d || row[k - 1] != '\n') /* a line cut short by a kill */
			continue;
		const char *f = row; /* the fifth column: seconds since the start */
		for (int i = 0; i < 4 && f; i++)
			f = strchr(f, '\t') ? strchr(f, '\t') + 1 : NULL;
		if (f && strtod(f, NULL) > elapsed)
			elapsed = strtod(f, NULL);
		if (row[d] == '.') {
			fputs(row, blk[STEPS]), cnt[STEPS]++;
		} else if (row[d] == '\t') {
			fputs(row, blk[EPOCHS]), cnt[EPOCHS]++;
			const char *v = f ? strchr(f, '\t') : NULL; /* the first metric */
			if (v && v[1] && v[1] != '\t' && v[1] != '\n')
				fputs(row, blk[VALID]), cnt[VALID]++;
		}
	}
	if (ferror(in)) {
		cs_err(err, CS_ERR_IO, log, 0, "read error: %s", strerror(errno));
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		fclose(blk[i]);
		blk[i] = NULL;
	}
	if (!cnt[STEPS] && !cnt[EPOCHS]) {
		cs_err(err, CS_ERR_FORMAT, log, 0, "no rows in the training log");
		goto out;
	}
	line[strcspn(line, "\r\n")] = 0;
	fputs("# Training curves of a cs-train log (cs-stats --train-log), its rows copied below.\n", fp);
	preamble(fp);
	datablock(fp, "steps", line, buf[STEPS], len[STEPS]);
	datablock(fp, "epochs", line, buf[EPOCHS], len[EPOCHS]);
	datablock(fp, "valid", line, buf[VALID], len[VALID]);
	fputs("set format y '%g'\n"
	      "name = ", fp);
	const char *base = strrchr(log, '/');
	put_quoted(fp, base ? base + 1 : log);
	fputs("\ndo for [ext in 'png svg'] {\n"
	      "eval setterm(ext)\n"
	      "set output 'train.'.ext\n"
	      "set multiplot layout 2,2 title sprintf('Training of %s', name) font ',13'\n"
	      "set key top right\n"
	      "set xrange [0:*]\n"
	      "set xlabel 'optimiser step'\n"
	      "set ylabel 'loss'\n"
	      "set title 'Training loss'\n", fp);
	loss_plot(fp, "'step'", cnt[STEPS], cnt[EPOCHS]);
	fputs("set title 'Validation'\n"
	      "set ylabel 'metric'\n"
	      "set key top center horizontal\n"
	      "set offsets 0, 0, graph 0.2, 0\n", fp);
	/* the validation columns, by name */
	int nv = 0;
	if (cnt[VALID]) {
		fputs("plot ", fp);
		for (char *t = strtok(line, "\t"); t; t = strtok(NULL, "\t"))
			if (!strncmp(t, "valid_", 6) && nv < 8) {
				fprintf(fp, "%s$valid using 'step':'%s' with linespoints lt %d title '%s'",
					nv ? ", \\\n     " : "", t, nv + 1, t + 6);
				nv++;
			}
		fputc('\n', fp);
	}
	if (!nv)
		fputs("unset xlabel; unset ylabel; unset border; unset tics; unset grid\n"
		      "set label 1 'no validation in this run (cs-train --valid)' at graph 0.5, 0.5 center\n"
		      "plot [0:1][0:1] NaN\n"
		      "unset label 1; set border 3; set tics; set grid\n"
		      "set xlabel 'optimiser step'\n", fp);
	fprintf(fp, "set offsets 0, 0, 0, 0\n"
		"set title 'Learning rate'\n"
		"set ylabel 'learning rate'\n"
		"set format y '%%.1e'\n"
		"unset key\n"
		"plot $%s using 'step':'lr' with lines lt 3 lw 2\n"
		"set key top right vertical\n"
		"set format y '%%g'\n"
		"set title 'Training loss against time'\n"
		"set xlabel '%s since the start'\n"
		"set ylabel 'loss'\n", cnt[STEPS] > cnt[EPOCHS] ? "steps" : "epochs",
		elapsed > 7200 ? "hours" : elapsed > 120 ? "minutes" : "seconds");
	loss_plot(fp, elapsed > 7200 ? "(column('elapsed_s') / 3600)" :
		  elapsed > 120 ? "(column('elapsed_s') / 60)" : "'elapsed_s'", cnt[STEPS], cnt[EPOCHS]);
	fputs("unset multiplot\n"
	      "set output\n"
	      "}\n", fp);
	rc = 0;
out:
	for (int i = 0; i < 3; i++) {
		if (blk[i])
			fclose(blk[i]);
		free(buf[i]);
	}
	free(line);
	free(row);
	fclose(in);
	return rc;
}
