/* pidfd-recv SOCKET [kill]: accept one connection on SOCKET, take the fd sent
 * with SCM_RIGHTS, print "pid=N" from its fdinfo (a pidfd's Pid: line) and,
 * with "kill", SIGKILL that process through the pidfd once a line arrives on
 * stdin (after the caller's create returned). Exits 0 on success. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", argv[1]);
	unlink(argv[1]);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 1) < 0)
		return perror("listen"), 1;
	printf("ready\n");
	fflush(stdout);
	int c = accept(s, NULL, NULL);
	if (c < 0)
		return perror("accept"), 1;
	char data[64], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	if (recvmsg(c, &m, 0) < 0)
		return perror("recvmsg"), 1;
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	if (!h || h->cmsg_type != SCM_RIGHTS)
		return fprintf(stderr, "no fd\n"), 1;
	int fd;
	memcpy(&fd, CMSG_DATA(h), sizeof fd);
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	int pid = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "Pid: %d", &pid) == 1)
			break;
	printf("pid=%d\n", pid);
	fflush(stdout);
	if (argc > 2 && strcmp(argv[2], "kill") == 0) {
		if (!fgets(line, sizeof line, stdin))
			return fprintf(stderr, "no go on stdin\n"), 1;
		if (syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) < 0)
			return perror("pidfd_send_signal"), 1;
	}
	return pid > 0 ? 0 : 1;
}
