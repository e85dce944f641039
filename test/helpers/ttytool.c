/* Terminal helpers for the tests.
 *
 * ttytool recv SOCKET [ROWSxCOLS]: what containerd's shim and conmon do with
 *   --console-socket. Listens on SOCKET (says "listening" on stderr), accepts
 *   one connection, receives the pty master (SCM_RIGHTS), prints the name that
 *   came with it on stderr, then relays stdin -> master and master -> stdout
 *   until the pty hangs up. With ROWSxCOLS, resizes the pty first.
 *
 * ttytool pty ROWSxCOLS NEWROWSxNEWCOLS CMD ARGS...: a real terminal for a
 *   foreground command. Runs CMD on a new pty (its controlling terminal, of
 *   size ROWSxCOLS), relays stdin -> pty and pty -> stdout, and when the
 *   output contains "RESIZE-ME" resizes the pty (the kernel sends SIGWINCH to
 *   CMD). Exits with CMD's exit status. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/wait.h>

static int relay(int master, pid_t child, const char *newsize)
{
	char b[4096];
	int in_open = 1, resized = 0;
	char tail[16] = {0};
	for (;;) {
		struct pollfd p[2] = {{.fd = master, .events = POLLIN}, {.fd = in_open ? 0 : -1, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (p[0].revents) {
			ssize_t n = read(master, b, sizeof b);
			if (n <= 0)
				break;
			if (write(1, b, (size_t)n) < 0)
				return 1;
			if (newsize && !resized) {
				char w[sizeof tail + sizeof b + 1];
				size_t tl = strlen(tail);
				memcpy(w, tail, tl);
				memcpy(w + tl, b, (size_t)n);
				w[tl + (size_t)n] = 0;
				if (strstr(w, "RESIZE-ME")) {
					struct winsize ws = {0};
					sscanf(newsize, "%hux%hu", &ws.ws_row, &ws.ws_col);
					ioctl(master, TIOCSWINSZ, &ws);
					resized = 1;
				}
				size_t wl = tl + (size_t)n, keep = wl < sizeof tail - 1 ? wl : sizeof tail - 1;
				memcpy(tail, w + wl - keep, keep);
				tail[keep] = 0;
			}
		}
		if (p[1].revents) {
			ssize_t n = read(0, b, sizeof b);
			if (n <= 0)
				in_open = 0;
			else if (write(master, b, (size_t)n) < 0)
				return 1;
		}
	}
	if (child <= 0)
		return 0;
	int st;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int pty_mode(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
		perror("openpt");
		return 1;
	}
	struct winsize ws = {0};
	sscanf(argv[2], "%hux%hu", &ws.ws_row, &ws.ws_col);
	ioctl(master, TIOCSWINSZ, &ws);
	const char *sname = ptsname(master);
	pid_t c = fork();
	if (c == 0) {
		setsid();
		int s = open(sname, O_RDWR);
		if (s < 0)
			_exit(127);
		ioctl(s, TIOCSCTTY, 0);
		dup2(s, 0);
		dup2(s, 1);
		dup2(s, 2);
		if (s > 2)
			close(s);
		close(master);
		execvp(argv[4], argv + 4);
		_exit(127);
	}
	return relay(master, c, argv[3]);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "pty"))
		return pty_mode(argc, argv);
	if (argc < 3 || strcmp(argv[1], "recv"))
		return 2;
	argv++;
	argc--;
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
	unlink(argv[1]);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0) {
		perror("bind");
		return 1;
	}
	fprintf(stderr, "listening\n");
	int c = accept(l, NULL, NULL);
	if (c < 0) {
		perror("accept");
		return 1;
	}
	char name[256] = {0}, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = name, .iov_len = sizeof name - 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	if (recvmsg(c, &m, 0) < 0) {
		perror("recvmsg");
		return 1;
	}
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	if (!h || h->cmsg_type != SCM_RIGHTS) {
		fprintf(stderr, "no fd received\n");
		return 1;
	}
	int master;
	memcpy(&master, CMSG_DATA(h), sizeof master);
	fprintf(stderr, "received %s\n", name);
	close(c);
	close(l);
	if (argc > 2) {
		struct winsize ws = {0};
		if (sscanf(argv[2], "%hux%hu", &ws.ws_row, &ws.ws_col) == 2)
			ioctl(master, TIOCSWINSZ, &ws);
	}
	return relay(master, 0, NULL);
}
