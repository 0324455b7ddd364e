#include "stages/run/signals.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "io/core/err.h"

static volatile sig_atomic_t rd_stop_signal;

static void on_stop(int sig) { rd_stop_signal = sig; }

int rd_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  /* SA_RESTART: a signal must not make a blocking read or MPI call fail. */
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0)
    return rd_err(RD_EIO, "cannot install the stop-signal handlers: %s", strerror(errno));
  /* Ctrl-C asks for the same orderly stop; SA_RESETHAND puts the default
   * back once it is caught, so a second Ctrl-C ends the process at once. */
  sa.sa_flags = SA_RESTART | SA_RESETHAND;
  if (sigaction(SIGINT, &sa, NULL) != 0)
    return rd_err(RD_EIO, "cannot install the SIGINT handler: %s", strerror(errno));
  return RD_OK;
}

const char *rd_signals_name(int sig) {
  switch (sig) {
  case SIGINT: return "SIGINT";
  case SIGTERM: return "SIGTERM";
  case SIGUSR1: return "SIGUSR1";
  default: return "a signal";
  }
}

int rd_signals_stop_requested(void) { return (int)rd_stop_signal; }
