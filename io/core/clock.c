#include "io/core/clock.h"

#include <time.h>

static double seconds(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double rd_clock_now(void) { return seconds(CLOCK_MONOTONIC); }

double rd_clock_cpu(void) { return seconds(CLOCK_PROCESS_CPUTIME_ID); }

void rd_clock_sleep(double s) {
  if (!(s > 0)) return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}
