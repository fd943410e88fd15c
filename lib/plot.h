/*
 * plot.h - gnuplot scripts that draw a stream's statistics (the data files
 * of cs_stats_write_plot_data) and the curves of a cs-train log, each plot
 * as PNG and SVG of CS_PLOT_WIDTH x CS_PLOT_HEIGHT pixels. The scripts read and
 * write files relative to the directory gnuplot runs in.
 */
#ifndef CS_PLOT_H
#define CS_PLOT_H

#include "cs.h"

#define CS_PLOT_WIDTH 960
#define CS_PLOT_HEIGHT 600

/*
 * The script of the stream plots whose data files `have` names (the
 * CS_PLOT_* bits of stats.h): length, popularity, day, hour, funnel
 * (.png and .svg each). title names the stream in the plots.
 */
int cs_plot_stats_script(FILE *fp, unsigned have, const char *title, cs_error *err);
/*
 * The script of train.png and train.svg from the TSV log at path (its
 * header names the columns): training loss, validation metrics and
 * learning rate against the step, and the loss against the time.
 */
int cs_plot_train_script(FILE *fp, const char *log, cs_error *err);

#endif
