/* Sending a file descriptor over a unix socket (SCM_RIGHTS) with DATA as the
 * bytes that carry it: shared by the stage (pty master, seccomp listener) and
 * libtsrun (the seccomp listener to listenerPath). Returns 0 or -1/errno. */
#ifndef TSRUN_FDPASS_H
#define TSRUN_FDPASS_H

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static inline int tsrun_send_fd(int sock, int fd, const void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof cbuf);
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -1 : 0;
}

#endif
