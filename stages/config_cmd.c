/* `rediff config show` and `rediff config doc`. */
#include <stdio.h>

#include "io/core/err.h"
#include "stages/commands.h"

/* Takes no option beyond -c, --run-dir and --set, and no argument. */
static int no_extras(const rd_cli *cli) {
  static const char *const none[] = {NULL};
  RD_TRY(rd_cli_check_opts(cli, none));
  if (cli->n_args)
    return rd_err(RD_EUSAGE, "'%s %s' takes no argument, got '%s'", cli->command, cli->sub, cli->args[0]);
  return RD_OK;
}

int rd_cmd_config_show(const rd_cli *cli) {
  RD_TRY(no_extras(cli));
  rd_config cfg;
  RD_TRY(rd_cli_config(cli, &cfg));
  return rd_config_emit(&cfg, stdout);
}

/* The generated part of docs/config.md (between its marker comments). */
int rd_cmd_config_doc(const rd_cli *cli) {
  RD_TRY(no_extras(cli));
  if (cli->config || cli->run_dir || cli->n_sets)
    return rd_err(RD_EUSAGE, "'config doc' describes the defaults; it takes no -c, --run-dir or --set");
  return rd_config_doc(stdout);
}
