/* One entry point per `rediff` command; each returns 0 or an RD_E* status
 * with the message in the error facility. stages/main.c maps them to exit
 * codes. */
#ifndef RD_STAGES_COMMANDS_H
#define RD_STAGES_COMMANDS_H

#include "stages/cli.h"

int rd_cmd_config_show(const rd_cli *cli);
int rd_cmd_config_doc(const rd_cli *cli);
int rd_cmd_data_synth(const rd_cli *cli);
int rd_cmd_data_info(const rd_cli *cli);
int rd_cmd_data_show(const rd_cli *cli);
int rd_cmd_base(const rd_cli *cli);
/* Slurm (stages/submit.c, stages/status.c) */
int rd_cmd_submit(const rd_cli *cli);
int rd_cmd_status(const rd_cli *cli);

#endif
