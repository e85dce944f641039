/* libtsrun's parts share these includes and the calls the wait threads make. */
#ifndef TSRUN_LIB_H
#define TSRUN_LIB_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <linux/bpf.h>
#include <unistd.h>

#include "../../include/tsrun.h"
#include "../../include/fdpass.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

int tsrun_relay(int master, int in, int out, int pidfd);
int tsrun_waitpid(int pid);

#endif
