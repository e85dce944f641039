/* Terminals: raw mode for the caller's tty, window sizes, the relay between
 * the caller's stdio and a pty master; and the threads that run the blocking
 * relay and waitpid for the engines. */
#include "lib.h"

/* --------------------------------------------------------- terminals --- */

/* Put FD (the caller's tty) in raw mode; its old settings go to SAVED. */
int tsrun_tty_raw(int fd, uint8_t *saved, int len)
{
	struct termios t;
	if ((size_t)len < sizeof t)
		return -EINVAL;
	if (tcgetattr(fd, &t) < 0)
		return -errno;
	memcpy(saved, &t, sizeof t);
	cfmakeraw(&t);
	t.c_oflag &= ~(tcflag_t)OPOST;
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		return -errno;
	return 0;
}

int tsrun_tty_restore(int fd, const uint8_t *saved)
{
	struct termios t;
	memcpy(&t, saved, sizeof t);
	return tcsetattr(fd, TCSANOW, &t) < 0 ? -errno : 0;
}

/* Copy the window size of FROM (the caller's tty) to TO (the pty master). */
int tsrun_winsize_copy(int from, int to)
{
	struct winsize ws;
	if (ioctl(from, TIOCGWINSZ, &ws) < 0)
		return -errno;
	return ioctl(to, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

static int write_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			poll(&p, 1, -1);
			continue;
		}
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Relay IN -> MASTER and MASTER -> OUT until the pty hangs up (every slave
 * closed) or the process behind PIDFD exits (then what is left is drained).
 * Blocking: lib/sys runs it on a worker thread. */
int tsrun_relay(int master, int in, int out, int pidfd)
{
	char b[16384];
	int in_open = in >= 0;
	for (;;) {
		struct pollfd p[3] = {{.fd = master, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}, {.fd = in_open ? in : -1, .events = POLLIN}};
		int r = poll(p, 3, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(master, b, sizeof b);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				return 0; /* EIO: no slave left */
			if (write_all(out, b, (size_t)n) < 0)
				return 0;
			continue;
		}
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(in, b, sizeof b);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				in_open = 0;
			else if (write_all(master, b, (size_t)n) < 0)
				return 0;
			continue;
		}
		if (p[1].revents & POLLIN) {
			/* the process is gone: drain what it wrote, then stop */
			for (;;) {
				struct pollfd q = {.fd = master, .events = POLLIN};
				if (poll(&q, 1, 50) <= 0)
					return 0;
				ssize_t n = read(master, b, sizeof b);
				if (n <= 0 || write_all(out, b, (size_t)n) < 0)
					return 0;
			}
		}
	}
}


/* The blocking calls on a thread of their own, for either engine: the caller
 * gets the read end of a pipe that yields the result (4 bytes) when the call
 * returns, and waits for it with an ordinary asynchronous read. No FFI
 * callback, no engine thread pool blocked on our poll(). */
struct bg {
	int kind; /* 0 relay, 1 waitpid */
	int a, b, c, d;
	int wfd;
};

static void *bg_main(void *arg)
{
	struct bg *g = arg;
	int r = g->kind == 0 ? tsrun_relay(g->a, g->b, g->c, g->d) : tsrun_waitpid(g->a);
	if (write(g->wfd, &r, sizeof r) < 0) {
	}
	close(g->wfd);
	free(g);
	return NULL;
}

static int bg_start(int kind, int a, int b, int c, int d)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	struct bg *g = malloc(sizeof *g);
	if (!g) {
		close(p[0]);
		close(p[1]);
		return -ENOMEM;
	}
	*g = (struct bg){.kind = kind, .a = a, .b = b, .c = c, .d = d, .wfd = p[1]};
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&t, &at, bg_main, g);
	pthread_attr_destroy(&at);
	if (e) {
		free(g);
		close(p[0]);
		close(p[1]);
		return -e;
	}
	return p[0];
}

int tsrun_relay_bg(int master, int in, int out, int pidfd) { return bg_start(0, master, in, out, pidfd); }
int tsrun_waitpid_bg(int pid) { return bg_start(1, pid, 0, 0, 0); }

