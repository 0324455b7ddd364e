#include "stages/cli.h"

#include <stdlib.h>
#include <string.h>

#include "io/core/err.h"

/* Options that take no value. Every other --name takes the next argument
 * (or the text after '='). */
static const char *const rd_cli_flags[] = {"dry-run", "cancel", "help", "quiet", "force", NULL};

static int is_flag(const char *name) {
  for (int i = 0; rd_cli_flags[i]; i++)
    if (strcmp(rd_cli_flags[i], name) == 0) return 1;
  return 0;
}

/* Commands whose first positional word is a subcommand. */
static int has_sub(const char *cmd) {
  return strcmp(cmd, "data") == 0 || strcmp(cmd, "config") == 0;
}

int rd_cli_parse(rd_cli *cli, int argc, char **argv) {
  memset(cli, 0, sizeof *cli);
  if (argc < 1) return rd_err(RD_EUSAGE, "no command given");
  cli->command = argv[0];
  int i = 1;
  if (has_sub(cli->command)) {
    if (argc < 2 || argv[1][0] == '-')
      return rd_err(RD_EUSAGE, "'%s' needs a subcommand", cli->command);
    cli->sub = argv[1];
    i = 2;
  }
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
      if (i + 1 >= argc) return rd_err(RD_EUSAGE, "%s needs a file", a);
      cli->config = argv[++i];
    } else if (strncmp(a, "--config=", 9) == 0) {
      cli->config = a + 9;
    } else if (strcmp(a, "--run-dir") == 0) {
      if (i + 1 >= argc) return rd_err(RD_EUSAGE, "--run-dir needs a folder");
      cli->run_dir = argv[++i];
    } else if (strncmp(a, "--run-dir=", 10) == 0) {
      cli->run_dir = a + 10;
    } else if (strcmp(a, "--set") == 0 || strncmp(a, "--set=", 6) == 0) {
      const char *v = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
      if (!v) return rd_err(RD_EUSAGE, "--set needs key.path=value");
      if (cli->n_sets >= RD_CLI_MAX) return rd_err(RD_EUSAGE, "too many --set options");
      cli->sets[cli->n_sets++] = v;
    } else if (strncmp(a, "--", 2) == 0 && a[2]) {
      if (cli->n_opts >= RD_CLI_MAX) return rd_err(RD_EUSAGE, "too many options");
      const char *name = a + 2;
      const char *eq = strchr(name, '=');
      const char *value = NULL;
      char *copy = NULL;
      if (eq) {
        copy = strndup(name, (size_t)(eq - name));
        if (!copy) return rd_err(RD_ENOMEM, "out of memory");
        name = copy;
        value = eq + 1;
      } else if (!is_flag(name)) {
        if (i + 1 >= argc) return rd_err(RD_EUSAGE, "--%s needs a value", name);
        value = argv[++i];
      }
      /* argv strings live for the whole run; the few option-name copies do too. */
      cli->opt_name[cli->n_opts] = name;
      cli->opt_value[cli->n_opts] = value;
      cli->n_opts++;
    } else if (a[0] == '-' && a[1]) {
      return rd_err(RD_EUSAGE, "unknown option %s", a);
    } else {
      if (cli->n_args >= RD_CLI_MAX) return rd_err(RD_EUSAGE, "too many arguments");
      cli->args[cli->n_args++] = a;
    }
  }
  return RD_OK;
}

const char *rd_cli_opt(const rd_cli *cli, const char *name) {
  for (int i = cli->n_opts - 1; i >= 0; i--)
    if (strcmp(cli->opt_name[i], name) == 0) return cli->opt_value[i] ? cli->opt_value[i] : "";
  return NULL;
}

int rd_cli_flag(const rd_cli *cli, const char *name) { return rd_cli_opt(cli, name) != NULL; }

int rd_cli_opt_int(const rd_cli *cli, const char *name, long def, long *out) {
  const char *v = rd_cli_opt(cli, name);
  if (!v) {
    *out = def;
    return RD_OK;
  }
  char *end;
  long x = strtol(v, &end, 10);
  if (!*v || *end) return rd_err(RD_EUSAGE, "--%s wants an integer, got '%s'", name, v);
  *out = x;
  return RD_OK;
}

int rd_cli_check_opts(const rd_cli *cli, const char *const *known) {
  for (int i = 0; i < cli->n_opts; i++) {
    int ok = 0;
    for (int k = 0; known && known[k]; k++)
      if (strcmp(known[k], cli->opt_name[i]) == 0) ok = 1;
    if (!ok)
      return rd_err(RD_EUSAGE, "'%s%s%s' does not take --%s", cli->command, cli->sub ? " " : "",
                    cli->sub ? cli->sub : "", cli->opt_name[i]);
  }
  return RD_OK;
}

int rd_cli_config(const rd_cli *cli, rd_config *cfg) {
  RD_TRY(rd_config_load(cfg, cli->config, cli->sets, cli->n_sets));
  if (cli->run_dir) {
    if (strlen(cli->run_dir) >= sizeof cfg->run_dir)
      return rd_err(RD_EUSAGE, "--run-dir is too long (at most %zu characters)", sizeof cfg->run_dir - 1);
    strcpy(cfg->run_dir, cli->run_dir);
  }
  return rd_config_validate(cfg);
}
