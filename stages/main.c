/* rediff: the command-line entry of every stage. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "io/core/err.h"
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
  fprintf(out, "  %-16s %s\n", "--version", "version, commit and what was built (model backends, HDF5)");
  fprintf(out, "\nWithout -c the embedded default config (configs/tiny.yaml's values) is used.\n");
}

/* Ends MPI if a stage started it. When a command fails on several ranks, the
 * ranks meet at a barrier for a few seconds: if every rank failed together
 * (the stages agree on errors at their checkpoints of control), they all
 * arrive and end normally; if this rank failed alone, the others may be
 * waiting in a collective it will never join, so it aborts the whole job
 * rather than hang. A stop request (exit 3) is agreed and ends normally, so
 * the launcher passes code 3 on. */
static int end_mpi(int code) {
  int inited = 0, finalized = 0, size = 1, rank = 0;
  MPI_Initialized(&inited);
  if (inited) MPI_Finalized(&finalized);
  if (!inited || finalized) {
    if (code != RD_EXIT_OK) fprintf(stderr, "rediff: %s\n", rd_err_msg());
    return code;
  }
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (size == 1 || code == RD_EXIT_OK || code == RD_EXIT_STOPPED) {
    /* A stop is agreed: every rank has the same message; rank 0 says it. */
    if (code != RD_EXIT_OK && rank == 0) fprintf(stderr, "rediff: %s\n", rd_err_msg());
  } else {
    MPI_Request req;
    int done = 0;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    for (int i = 0; i < 500 && !done; i++) {
      MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      if (!done) nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    /* Failed together: one line, from rank 0. Failed alone: its own line,
     * naming the rank, since only that rank's node saw the problem. */
    if (!done) fprintf(stderr, "rediff: rank %d: %s\n", rank, rd_err_msg());
    else if (rank == 0) fprintf(stderr, "rediff: %s\n", rd_err_msg());
    if (!done) {
      fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, code);
    }
  }
  MPI_Finalize();
  return code;
}

/* Edit distance of two short words (commands are under 16 letters). */
static int edit_distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b), d[17][17];
  if (la > 16 || lb > 16) return 99;
  for (int i = 0; i <= la; i++) d[i][0] = i;
  for (int j = 0; j <= lb; j++) d[0][j] = j;
  for (int i = 1; i <= la; i++)
    for (int j = 1; j <= lb; j++) {
      int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]), del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
  return d[la][lb];
}

/* The command nearest to word, if a slip of at most 2 letters away. */
static const char *nearest_command(const char *word) {
  const char *best = NULL;
  int bd = 3;
  for (int i = 0; i < RD_N_COMMANDS; i++) {
    int dist = edit_distance(word, rd_commands[i].command);
    if (dist < bd) bd = dist, best = rd_commands[i].command;
  }
  return best;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? RD_EXIT_USAGE : RD_EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
    printf("rediff %s (commit %s; %s)\n", RD_VERSION, RD_GIT_COMMIT, RD_BUILD_INFO);
    return RD_EXIT_OK;
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
      const char *near = nearest_command(cli.command);
      if (near && strcmp(near, cli.command) != 0)
        s = rd_err(RD_EUSAGE, "unknown command '%s' (did you mean '%s'? rediff --help lists them)", cli.command,
                   near);
      else
        s = rd_err(RD_EUSAGE, "unknown command '%s%s%s' (rediff --help lists them)", cli.command,
                   cli.sub ? " " : "", cli.sub ? cli.sub : "");
    }
  }
  if (s == RD_OK) s = cmd->fn(&cli);
  int code = s == RD_OK ? RD_EXIT_OK : s == RD_EUSAGE ? RD_EXIT_USAGE : s == RD_ESTOP ? RD_EXIT_STOPPED : RD_EXIT_ERROR;
  return end_mpi(code);
}
