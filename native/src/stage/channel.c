/* The sync socket (SOCK_SEQPACKET) to the runtime: frames out and in, and
 * where an error goes once the runtime is no longer listening. */
#include "stage.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int syncfd = -1;
static int debug_on;
/* the exec fifo, open for writing while startContainer hooks run: die() reports there */
static int start_result_fd = -1;

void chan_init(int fd, int debug)
{
	syncfd = fd;
	debug_on = debug;
}

int chan_fd(void)
{
	return syncfd;
}

void chan_close(void)
{
	if (syncfd >= 0)
		close(syncfd);
	syncfd = -1;
}

void chan_report_to(int fd)
{
	start_result_fd = fd;
}

void send_msg(uint32_t type, int err, const char *payload, size_t len)
{
	char buf[sizeof(struct tsrun_msg_hdr) + TSRUN_MSG_MAX];
	struct tsrun_msg_hdr h = {.type = type, .err = err, .len = 0};
	if (syncfd < 0)
		return;
	if (len > TSRUN_MSG_MAX)
		len = TSRUN_MSG_MAX;
	h.len = (uint32_t)len;
	memcpy(buf, &h, sizeof h);
	if (len)
		memcpy(buf + sizeof h, payload, len);
	while (send(syncfd, buf, sizeof h + len, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

int recv_msg(struct tsrun_msg_hdr *h, char *payload, size_t cap)
{
	char buf[sizeof(struct tsrun_msg_hdr) + TSRUN_MSG_MAX + 1];
	ssize_t n;
	do
		n = recv(syncfd, buf, sizeof buf, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	if ((size_t)n < sizeof *h)
		return -1;
	memcpy(h, buf, sizeof *h);
	if (h->len > TSRUN_MSG_MAX || sizeof *h + h->len != (size_t)n || h->len >= cap)
		return -1;
	memcpy(payload, buf + sizeof *h, h->len);
	payload[h->len] = 0;
	return 0;
}

static void write_line(int fd, const char *prefix, const char *msg, int err, const char *suffix)
{
	char line[TSRUN_MSG_MAX + 64];
	int m = snprintf(line, sizeof line, "%s%s%s%s%s", prefix, msg, err ? ": " : "", err ? strerror(err) : "", suffix);
	if (m > 0 && write(fd, line, (size_t)(m < (int)sizeof line ? m : (int)sizeof line - 1)) < 0) {
	}
}

/* Report an error with its errno and context, then die. After the runtime has
 * gone (no sync socket) the line goes to start (through the exec fifo, "E" +
 * text) or to the container's stderr. */
void die(int err, const char *fmt, ...)
{
	char buf[TSRUN_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n >= (int)sizeof buf)
		n = sizeof buf - 1;
	if (syncfd >= 0)
		send_msg(M_ERROR, err, buf, (size_t)n);
	else if (start_result_fd >= 0)
		write_line(start_result_fd, "E", buf, err, "");
	else
		write_line(2, "tsrun: ", buf, err, "\n");
	_exit(1);
}

void debugf(const char *fmt, ...)
{
	if (!debug_on)
		return;
	char buf[512];
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int n = snprintf(buf, sizeof buf, "[%ld.%06ld] ", (long)ts.tv_sec, ts.tv_nsec / 1000);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof buf)
		n = sizeof buf - 1;
	send_msg(M_DEBUG, 0, buf, (size_t)n);
}
