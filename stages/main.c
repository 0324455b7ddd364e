/* rediff: the command-line entry of every stage. */
#include <stdio.h>
#include <string.h>

#include "io/err.h"
#include "stages/cli.h"
#include "stages/commands.h"

/* Exit codes (docs/errors.md). */
enum { RD_EXIT_OK = 0, RD_EXIT_ERROR = 1, RD_EXIT_USAGE = 2, RD_EXIT_STOPPED = 3 };

typedef struct {
  const char *command, *sub;
  int (*fn)(const rd_cli *);
  const char *help;
} rd_command;

static const rd_command rd_commands[] = {
    {"config", "show", rd_cmd_config_show, "the effective config, defaults filled, as YAML"},
    {"config", "doc", rd_cmd_config_doc, "every config key as Markdown (docs/config.md)"},
    {"data", "synth", rd_cmd_data_synth, "ShapesCap shards + vocab into RUN_DIR/data/"},
    {"data", "info", rd_cmd_data_info, "FILE: what a shard holds"},
    {"data", "show", rd_cmd_data_show, "FILE --index I --png OUT: one sample as a picture"},
    {"base", NULL, rd_cmd_base, "train the mask-prediction base model (Eq. 1)"},
    {"stage1", NULL, rd_cmd_stage1, "foundational revision training from base (Eq. 2, 3)"},
    {"mask", NULL, rd_cmd_mask, "the mask-trained baseline: base continued with Eq. 1 for stage1.steps"},
    {"draft", NULL, rd_cmd_draft, "--round R: the model's drafts of training captions"},
    {"expert", NULL, rd_cmd_expert, "--round R: the expert revises the round's drafts"},
    {"stage2", NULL, rd_cmd_stage2, "--round R: online self-correction fine-tuning (Eq. 4)"},
    {"eval", NULL, rd_cmd_eval, "caption quality against decoding speed, every model and mode"},
    {"generate", NULL, rd_cmd_generate, "--ckpt FILE (--image PNG | --shard FILE --index I): one caption"},
    {"pipeline", NULL, rd_cmd_pipeline, "the whole chain locally, skipping finished stages"},
    {"submit", NULL, rd_cmd_submit, "the chain as dependent Slurm jobs [--dry-run | --cancel]"},
    {"status", NULL, rd_cmd_status, "what is done, queued, running or failed in RUN_DIR"},
};
#define RD_N_COMMANDS (int)(sizeof rd_commands / sizeof rd_commands[0])

static void usage(FILE *out) {
  fprintf(out, "usage: rediff <command> [-c CONFIG] [--run-dir DIR] [--set key.path=value ...]\n\n");
  for (int i = 0; i < RD_N_COMMANDS; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s%s%s", rd_commands[i].command, rd_commands[i].sub ? " " : "",
             rd_commands[i].sub ? rd_commands[i].sub : "");
    fprintf(out, "  %-16s %s\n", name, rd_commands[i].help);
  }
  fprintf(out, "\nWithout -c the embedded default config (configs/tiny.yaml's values) is used.\n");
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? RD_EXIT_USAGE : RD_EXIT_OK;
  }
  rd_cli cli;
  int s = rd_cli_parse(&cli, argc - 1, argv + 1);
  const rd_command *cmd = NULL;
  if (s == RD_OK) {
    for (int i = 0; i < RD_N_COMMANDS; i++) {
      if (strcmp(rd_commands[i].command, cli.command) != 0) continue;
      if (rd_commands[i].sub && (!cli.sub || strcmp(rd_commands[i].sub, cli.sub) != 0)) continue;
      cmd = &rd_commands[i];
    }
    if (!cmd) {
      s = rd_err(RD_EUSAGE, "unknown command '%s%s%s' (rediff --help lists them)", cli.command,
                 cli.sub ? " " : "", cli.sub ? cli.sub : "");
    }
  }
  if (s == RD_OK) s = cmd->fn(&cli);
  if (s == RD_OK) return RD_EXIT_OK;
  fprintf(stderr, "rediff: %s\n", rd_err_msg());
  if (s == RD_EUSAGE) return RD_EXIT_USAGE;
  if (s == RD_ESTOP) return RD_EXIT_STOPPED;
  return RD_EXIT_ERROR;
}
