/* One entry point per `rediff` command; each returns 0 or an RD_E* status
 * with the message in the error facility. stages/main.c maps them to exit
 * codes. */
#ifndef RD_STAGES_COMMANDS_H
#define RD_STAGES_COMMANDS_H

#include <stddef.h>

#include "stages/cli.h"

int rd_cmd_config_show(const rd_cli *cli);
int rd_cmd_config_doc(const rd_cli *cli);
int rd_cmd_data_synth(const rd_cli *cli);
int rd_cmd_data_info(const rd_cli *cli);
int rd_cmd_data_show(const rd_cli *cli);
int rd_cmd_base(const rd_cli *cli);
int rd_cmd_stage1(const rd_cli *cli);
int rd_cmd_mask(const rd_cli *cli);
int rd_cmd_expert(const rd_cli *cli);
int rd_cmd_generate(const rd_cli *cli);
int rd_cmd_eval(const rd_cli *cli);
int rd_cmd_draft(const rd_cli *cli);
int rd_cmd_stage2(const rd_cli *cli);
int rd_cmd_pipeline(const rd_cli *cli);
/* The checkpoint folder (RUN_DIR-relative) a round starts from: ckpt/stage1
 * for round 1, ckpt/stage2_r<R-1> after. */
int rd_round_model(int round, char *rel, size_t n);
/* Slurm (slurm/submit.c, stages/status.c) */
int rd_cmd_submit(const rd_cli *cli);
int rd_cmd_status(const rd_cli *cli);

#endif
