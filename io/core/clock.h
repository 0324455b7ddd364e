/* The one clock of rediff: how long work took (progress, step times, the
 * command expert's deadlines, benchmarks). Monotonic, so a change of the
 * wall clock (NTP, a suspended laptop) cannot make a step look negative or
 * a deadline pass early. */
#ifndef RD_IO_CORE_CLOCK_H
#define RD_IO_CORE_CLOCK_H

/* Seconds on CLOCK_MONOTONIC: only differences mean anything. */
double rd_clock_now(void);
/* CPU seconds this process has used (all its threads): on a shared machine
 * it moves less than rd_clock_now for single-threaded work, as time spent
 * waiting for a core is not counted. */
double rd_clock_cpu(void);
/* Sleeps s seconds (s <= 0: returns at once); a signal may end it early. */
void rd_clock_sleep(double s);

#endif
