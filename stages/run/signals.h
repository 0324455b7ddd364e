/* Stop requests: SIGTERM (Slurm's time limit and preemption, `kill`),
 * SIGUSR1 (Slurm's --signal warning) and SIGINT (Ctrl-C; a second one ends
 * the process at once) ask a trainer to finish its step, checkpoint and exit
 * with RD_EXIT_STOPPED. The flag is the one piece of
 * process-wide state in rediff: a signal handler can reach nothing else. */
#ifndef RD_STAGES_RUN_SIGNALS_H
#define RD_STAGES_RUN_SIGNALS_H

int rd_signals_install(void);
/* The signal number that asked to stop, or 0. */
int rd_signals_stop_requested(void);
/* "SIGINT", "SIGTERM", "SIGUSR1" (or "a signal"), for messages. */
const char *rd_signals_name(int sig);

#endif
