/* daemon.h -- what saltrelay-up and saltrelay-down share as programs:
 * command line, config loading (exit 2 on a bad file), logging, signals
 * (taken by the main thread alone, through a signalfd), the worker threads
 * ("parts", see part.h), systemd notification and the drain on SIGTERM/SIGINT. */
#ifndef SALTRELAY_DAEMON_H
#define SALTRELAY_DAEMON_H

#include "config.h"
#include "part.h"

/* Runs the program; returns its exit status. PICK fills PARTS after the
 * config is loaded (to choose parts by mode); they are started in that order
 * and stopped in the reverse one. */
typedef size_t (*part_picker)(const struct config *cfg, const struct part_def **parts, size_t max);
int daemon_main(int argc, char **argv, int role, const char *progname, part_picker pick);

#endif
