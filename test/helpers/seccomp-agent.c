/* seccomp-agent SOCKET: a seccomp notify listener for tests, as
 * linux.seccomp.listenerPath describes. Accepts one connection, receives the
 * listener fd (SCM_RIGHTS) with the containerProcessState JSON (printed as
 * "state <json>"), then answers every notification with the return value
 * 4242, printing "notified nr=N", until the filter's processes are gone. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
	unlink(argv[1]);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0) {
		perror("bind");
		return 1;
	}
	fprintf(stderr, "listening\n");
	int c = accept(l, NULL, NULL);
	static char data[65536];
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = {.iov_base = data, .iov_len = sizeof data - 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	ssize_t n = recvmsg(c, &m, 0);
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	if (n < 0 || !h || h->cmsg_type != SCM_RIGHTS) {
		fprintf(stderr, "no fd\n");
		return 1;
	}
	data[n] = 0;
	int fd;
	memcpy(&fd, CMSG_DATA(h), sizeof fd);
	printf("state %s\n", data);
	fflush(stdout);
	struct seccomp_notif_sizes sz;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0)
		return 1;
	struct seccomp_notif *req = calloc(1, sz.seccomp_notif);
	struct seccomp_notif_resp *resp = calloc(1, sz.seccomp_notif_resp);
	for (;;) {
		memset(req, 0, sz.seccomp_notif);
		if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		printf("notified nr=%d\n", req->data.nr);
		fflush(stdout);
		memset(resp, 0, sz.seccomp_notif_resp);
		resp->id = req->id;
		resp->val = 4242;
		ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
	}
	return 0;
}
