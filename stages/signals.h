/* Stop requests: SIGTERM (Slurm's time limit and preemption, `kill`) and
 * SIGUSR1 (Slurm's --signal warning) ask a trainer to finish its step,
 * checkpoint and exit with RD_EXIT_STOPPED. The flag is the one piece of
 * process-wide state in rediff: a signal handler can reach nothing else. */
#ifndef RD_STAGES_SIGNALS_H
#define RD_STAGES_SIGNALS_H

int rd_signals_install(void);
/* The signal number that asked to stop, or 0. */
int rd_signals_stop_requested(void);

#endif
