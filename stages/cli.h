/* The `rediff` command line: one parser for every command, so every stage
 * takes -c, --run-dir and --set the same way. */
#ifndef RD_STAGES_CLI_H
#define RD_STAGES_CLI_H

#include "io/config.h"

#define RD_CLI_MAX 64

typedef struct {
  const char *command;    /* "data", "base", ... */
  const char *sub;        /* "synth" of "data synth", or NULL */
  const char *config;     /* -c / --config, or NULL for the embedded default */
  const char *run_dir;    /* --run-dir, or NULL */
  const char *sets[RD_CLI_MAX]; /* --set key.path=value, in order */
  int n_sets;
  const char *opt_name[RD_CLI_MAX]; /* other --name value / --flag options */
  const char *opt_value[RD_CLI_MAX];/* NULL for flags */
  int n_opts;
  const char *args[RD_CLI_MAX];     /* positional arguments after the command */
  int n_args;
} rd_cli;

/* Parses argv after the program name. Usage errors return RD_EUSAGE. */
int rd_cli_parse(rd_cli *cli, int argc, char **argv);
/* The value of --name, or NULL when absent. */
const char *rd_cli_opt(const rd_cli *cli, const char *name);
int rd_cli_flag(const rd_cli *cli, const char *name);
/* --name as an integer; absent gives def; a malformed value is a usage error. */
int rd_cli_opt_int(const rd_cli *cli, const char *name, long def, long *out);
/* Rejects options the command does not know; `known` is NULL-terminated. */
int rd_cli_check_opts(const rd_cli *cli, const char *const *known);
/* Loads the config named by -c (or the defaults), then --set, then --run-dir. */
int rd_cli_config(const rd_cli *cli, rd_config *cfg);

#endif
