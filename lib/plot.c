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
		      "set xrange [0.8:*]\n"
		      "plot 'length.tsv' using 1:2 with impulses lt 1 lw 3, '' using 1:2 with points lt 1\n"
		      "unset logscale; set xrange [*:*]; set format x '% h'\n", fp);
	if (have & CS_PLOT_POPULARITY)
		fputs("set output 'popularity.'.ext\n"
		      "set title sprintf('Item popularity of %s (log-log)', name)\n"
		      "set xlabel 'item rank, most frequent first'\n"
		      "set ylabel 'events on the item'\n"
		      "set logscale xy\n"
		      "set format x '%.0s%c'\n"
		      "plot 'popularity.tsv' using 1:2 with lines lt 1 lw 2.5\n"
		      "unset logscale; set format x '% h'\n", fp);
	if (have & CS_PLOT_DAY)
		fputs("set output 'day.'.ext\n"
		      "set title sprintf('Events per day of %s (UTC)', name)\n"
		      "set xlabel 'day'\n"
		      "set ylabel 'events'\n"
		      "stats 'day.tsv' using 2 nooutput\n"
		      "ndays = STATS_records; every = ceil(ndays / 31.0)\n"
		      "set xrange [-0.7:ndays - 0.3]; set yrange [0:*]\n"
		      "set boxwidth 0.8\n"
		      "set grid noxtics nomxtics\n"
		      "set xtics rotate by -45 scale 0\n"
		      "plot 'day.tsv' using 0:2:xtic(int($0) % every == 0 ? strcol(1) : '') with boxes lt 1\n"
		      "set xrange [*:*]; set yrange [*:*]; set grid xtics mxtics\n"
		      "set xtics norotate scale default; set boxwidth\n"
		      "set output 'hour.'.ext\n"
		      "set title sprintf('Events per hour of the day of %s (UTC)', name)\n"
		      "set xlabel 'hour (UTC)'\n"
		      "set ylabel 'events'\n"
		      "set xrange [-0.7:23.7]; set xtics 0, 1, 23 scale 0; set yrange [0:*]\n"
		      "set grid noxtics nomxtics\n"
		      "set boxwidth 0.8\n"
		      "plot 'hour.tsv' using 1:2 with boxes lt 1\n"
		      "set xrange [*:*]; set xtics autofreq scale default; set yrange [*:*]; set boxwidth\n"
		      "set grid xtics mxtics\n", fp);
	if (have & CS_PLOT_FUNNEL)
		fputs("set key\n"
		      "set output 'funnel.'.ext\n"
		      "set title sprintf('Funnel of %s: sessions and users with at least one event of each type', name)\n"
		      "set xlabel 'event type'\n"
		      "set ylabel 'sessions or users'\n"
		      "set style data histograms\n"
		      "set style histogram clustered gap 1\n"
		      "set boxwidth 0.9\n"
		      "set yrange [0:*]; set offsets 0, 0, graph 0.12, 0\n"
		      "set grid noxtics nomxtics\n"
		      "set key top right\n"
		      "plot 'funnel.tsv' using 'sessions':xtic(1) title 'sessions' lt 1, \\\n"
		      "     '' using 'users' title 'users' lt 2, \\\n"
		      "     '' using ($0 - 1.0/6):'sessions':(sprintf(\"%d\\n%.1f%%\", column('sessions'), 100 * column('session_share'))) \\\n"
		      "        with labels offset 0, 1.6 font ',10', \\\n"
		      "     '' using ($0 + 1.0/6):'users':(sprintf(\"%d\\n%.1f%%\", column('users'), 100 * column('user_share'))) \\\n"
		      "        with labels offset 0, 1.6 font ',10'\n"
		      "set style data points; set yrange [*:*]; set offsets 0, 0, 0, 0\n"
		      "set grid xtics mxtics\n", fp);
	fputs("set output\n"
	      "}\n", fp);
	(void)err;
	return 0;
}

int cs_plot_train_script(FILE *fp, const char *log, cs_error *err)
{
	FILE *in = fopen(log, "r");
	if (!in)
		return cs_err(err, CS_ERR_IO, log, 0, "cannot open: %s", strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, in);
	int bad = ferror(in);
	fclose(in);
	if (n <= 0 || bad) {
		free(line);
		return bad ? cs_err(err, CS_ERR_IO, log, 0, "read error: %s", strerror(errno))
			   : cs_err(err, CS_ERR_FORMAT, log, 1, "empty training log");
	}
	if (line[0] == '{' || strncmp(line, "epoch\tstep\tloss", 15) != 0) {
		free(line);
		return cs_err(err, CS_ERR_FORMAT, log, 1,
			      "not the TSV log of cs-train --log (a --log-json log cannot be plotted)");
	}
	line[strcspn(line, "\r\n")] = 0;
	/* validation columns, by name */
	char *valid[8];
	int nv = 0;
	for (char *s = strtok(line, "\t"); s; s = strtok(NULL, "\t"))
		if (!strncmp(s, "valid_", 6) && nv < 8)
			valid[nv++] = s;
	fputs("# Training curves of a cs-train log (cs-stats --train-log).\n", fp);
	preamble(fp);
	fputs("set format y '%g'\n"
	      "log = ", fp);
	put_quoted(fp, log);
	fputs("\nname = ", fp);
	const char *base = strrchr(log, '/');
	put_quoted(fp, base ? base + 1 : log);
	/* Step rows (--log-every) have a fractional epoch, epoch rows a whole one. */
	fputs("\nisstep(c) = strstrt(strcol(c), '.') > 0\n"
	      "stepv(y) = isstep('epoch') ? y : NaN\n"
	      "epochv(y) = isstep('epoch') ? NaN : y\n"
	      "stats log using 'step' nooutput\n"
	      "nrows = STATS_records\n"
	      "do for [ext in 'png svg'] {\n"
	      "eval setterm(ext)\n"
	      "set output 'train.'.ext\n"
	      "set multiplot layout 2,2 title sprintf('Training of %s', name) font ',13'\n"
	      "set key top right\n"
	      "set xlabel 'optimiser step'\n"
	      "set ylabel 'loss'\n"
	      "set title 'Training loss'\n"
	      "plot log using 'step':(stepv(column('loss'))) with lines lt 1 lw 1.2 title 'mean over the last steps', \\\n"
	      "     log using 'step':(epochv(column('loss'))) with linespoints lt 2 title 'mean of the epoch'\n",
	      fp);
	fputs("set title 'Validation'\n"
	      "set ylabel 'metric'\n", fp);
	if (nv) {
		fputs("plot ", fp);
		for (int i = 0; i < nv; i++)
			fprintf(fp, "%slog using 'step':(epochv(column('%s'))) with linespoints lt %d title '%s'",
				i ? ", \\\n     " : "", valid[i], i + 1, valid[i] + 6);
		fputc('\n', fp);
	} else {
		fputs("unset xlabel; unset ylabel; unset border; unset tics; unset grid\n"
		      "set label 1 'no validation in this run (cs-train --valid)' at graph 0.5, 0.5 center\n"
		      "plot [0:1][0:1] NaN\n"
		      "unset label 1; set border 3; set tics; set grid\n"
		      "set xlabel 'optimiser step'\n", fp);
	}
	fputs("set title 'Learning rate'\n"
	      "set ylabel 'learning rate'\n"
	      "set format y '%.1e'\n"
	      "plot log using 'step':(column('lr')) with lines lt 3 lw 2\n"
	      "set format y '%g'\n"
	      "set title 'Training loss against time'\n"
	      "set xlabel 'minutes since the start'\n"
	      "set ylabel 'loss'\n"
	      "plot log using (column('elapsed_s')/60):(stepv(column('loss'))) with lines lt 1 lw 1.2 title 'mean over the last steps', \\\n"
	      "     log using (column('elapsed_s')/60):(epochv(column('loss'))) with linespoints lt 2 title 'mean of the epoch'\n"
	      "unset multiplot\n"
	      "set output\n"
	      "}\n", fp);
	free(line);
	return 0;
}
