/* libtsrun: the few syscalls Node cannot make, loaded through koffi by
 * lib/sys. No policy here: every decision is made in TypeScript. */
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

#include "../include/tsrun.h"
#include "../include/fdpass.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

int tsrun_abi_version(void) { return TSRUN_ABI_VERSION; }

static int memfd_sealed(const char *name, const void *data, size_t len, int exec)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | (exec ? MFD_EXEC : 0));
	if (fd < 0 && errno == EINVAL && exec)
		fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, (const char *)data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
		goto fail;
	return fd;
fail: {
	int e = errno ? errno : EIO;
	close(fd);
	return -e;
}
}

static int move_high(int fd, int min)
{
	if (fd < 0)
		return fd;
	int n = fcntl(fd, F_DUPFD_CLOEXEC, min);
	int e = errno;
	close(fd);
	return n < 0 ? -e : n;
}

/* A sealed memfd holding LEN bytes of DATA (EXEC: the stage program, run
 * from it so that no process of a container ever has a host file as its
 * /proc/PID/exe: CVE-2019-5736). Returns the fd (close-on-exec) or -errno. */
int tsrun_memfd_sealed(const char *name, const uint8_t *data, int len, int exec)
{
	if (len < 0)
		return -EINVAL;
	return memfd_sealed(name, data, (size_t)len, exec);
}

/* Spawn the stage from STAGE_FD (a sealed memfd: tsrun_memfd_sealed) with the
 * plan in a sealed memfd. Fds 0..2+preserve are inherited as they are; the sync socket
 * lands at 3+preserve, the plan at 4+preserve. out[0] = our end of the sync
 * socket, out[1] = a pidfd of the stage, out[2] = its pid.
 * Returns 0 or -errno; on error errctx names the step. */
int tsrun_spawn(int stage_fd, const uint8_t *plan, int plan_len, int preserve, int *out,
		char *errctx, int errlen)
{
	int memexe = -1, planfd = -1, sv[2] = {-1, -1}, pidfd = -1;
	int ret = 0;
	pid_t pid = -1;
	const char *step = "";
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int fa_init = 0, attr_init = 0;
	int base = 64 + preserve;

#define FAIL(what) do { ret = -errno; step = what; goto out; } while (0)
	/* above the fds the child inherits, so that no dup2 below lands on it */
	memexe = fcntl(stage_fd, F_DUPFD_CLOEXEC, base);
	if (memexe < 0)
		FAIL("dup stage memfd");
	planfd = memfd_sealed("tsrun-plan", plan, (size_t)plan_len, 0);
	if (planfd < 0) { errno = -planfd; FAIL("write launch plan"); }
	planfd = move_high(planfd, base);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		FAIL("socketpair");
	sv[0] = move_high(sv[0], base);
	sv[1] = move_high(sv[1], base);
	if (memexe < 0 || planfd < 0 || sv[0] < 0 || sv[1] < 0) { errno = EMFILE; FAIL("dup fds"); }

	if ((errno = posix_spawn_file_actions_init(&fa)))
		FAIL("spawn actions");
	fa_init = 1;
	/* Node marks its stdio close-on-exec; dup2 onto itself clears the flag in
	 * the child only (glibc >= 2.29). Closed fds stay closed. */
	for (int fd = 0; fd < 3 + preserve; fd++)
		if (fcntl(fd, F_GETFD) >= 0 && (errno = posix_spawn_file_actions_adddup2(&fa, fd, fd)))
			FAIL("spawn actions");
	if ((errno = posix_spawn_file_actions_adddup2(&fa, sv[1], 3 + preserve)))
		FAIL("spawn actions");
	if ((errno = posix_spawn_file_actions_adddup2(&fa, planfd, 4 + preserve)))
		FAIL("spawn actions");
	if ((errno = posix_spawnattr_init(&attr)))
		FAIL("spawn attributes");
	attr_init = 1;
	sigset_t all, none;
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

	char exe[64], a_sync[16], a_plan[16];
	snprintf(exe, sizeof exe, "/proc/self/fd/%d", memexe);
	snprintf(a_sync, sizeof a_sync, "%d", 3 + preserve);
	snprintf(a_plan, sizeof a_plan, "%d", 4 + preserve);
	char *argv[] = {"tsrun:stage", "init", a_sync, a_plan, NULL};
	char *envp[] = {NULL};
	if ((errno = posix_spawn(&pid, exe, &fa, &attr, argv, envp)))
		FAIL("spawn stage");
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		FAIL("pidfd_open stage");
	out[0] = sv[0];
	out[1] = pidfd;
	out[2] = pid;
	sv[0] = -1;
out:
	if (ret < 0 && pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_init)
		posix_spawnattr_destroy(&attr);
	if (memexe >= 0) close(memexe);
	if (planfd >= 0) close(planfd);
	if (sv[0] >= 0) close(sv[0]);
	if (sv[1] >= 0) close(sv[1]);
	if (ret < 0 && errctx && errlen > 0)
		snprintf(errctx, (size_t)errlen, "%s", step);
	return ret;
#undef FAIL
}

/* Wait for a message on SOCK or the death of the process behind PIDFD.
 * Returns the message length (header included), -ECHILD when the process
 * died with nothing to read, -ETIMEDOUT, or -errno. A file descriptor sent
 * with the message (SCM_RIGHTS) lands in *FD_OUT (else -1). */
int tsrun_recv(int sock, int pidfd, uint8_t *buf, int cap, int timeout_ms, int *fd_out)
{
	struct pollfd p[2] = {{.fd = sock, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
	*fd_out = -1;
	for (;;) {
		int r = poll(p, pidfd >= 0 ? 2 : 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			char cbuf[CMSG_SPACE(sizeof(int))];
			struct iovec iov = {.iov_base = buf, .iov_len = (size_t)cap};
			struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
			ssize_t n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n < 0)
				return -errno;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
				if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int)))
					memcpy(fd_out, CMSG_DATA(c), sizeof(int));
			if (n == 0)
				return -ECHILD; /* every writer is gone: report it as a death */
			return (int)n;
		}
		if (p[1].revents & POLLIN)
			return -ECHILD;
	}
}

/* Connect to the unix socket at PATH and send FD with DATA (SCM_RIGHTS):
 * the seccomp listener handed to linux.seccomp.listenerPath. */
int tsrun_send_fd_to(const char *path, int fd, const uint8_t *data, int len)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path)
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
		int e = errno;
		close(s);
		return -e;
	}
	int r = tsrun_send_fd(s, fd, data, (size_t)len);
	int e = errno;
	close(s);
	return r < 0 ? -e : 0;
}

/* Load a BPF_PROG_TYPE_CGROUP_DEVICE program and attach it to the cgroup v2
 * directory DIR (alongside any others: BPF_F_ALLOW_MULTI). The attachment
 * keeps the program alive; it goes with the cgroup. LOG gets the verifier's
 * complaint on failure. */
int tsrun_bpf_device_filter(const char *dir, const uint8_t *insns, int count, char *log, int loglen)
{
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insn_cnt = (uint32_t)count;
	a.insns = (uint64_t)(uintptr_t)insns;
	a.license = (uint64_t)(uintptr_t)"Apache";
	if (log && loglen > 0) {
		log[0] = 0;
		a.log_level = 1;
		a.log_size = (uint32_t)loglen;
		a.log_buf = (uint64_t)(uintptr_t)log;
	}
	int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
	if (prog < 0)
		return -errno;
	int cg = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (cg < 0) {
		int e = errno;
		close(prog);
		return -e;
	}
	memset(&a, 0, sizeof a);
	a.target_fd = (uint32_t)cg;
	a.attach_bpf_fd = (uint32_t)prog;
	a.attach_type = BPF_CGROUP_DEVICE;
	a.attach_flags = BPF_F_ALLOW_MULTI;
	int r = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof a);
	int e = errno;
	close(cg);
	close(prog);
	return r < 0 ? -e : 0;
}

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

int tsrun_send(int sock, const uint8_t *buf, int len)
{
	ssize_t n;
	do
		n = send(sock, buf, (size_t)len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : (int)n;
}

/* Reap a direct child; returns its wait status or -errno. */
int tsrun_waitpid(int pid)
{
	int st;
	for (;;) {
		if (waitpid(pid, &st, 0) >= 0)
			return st;
		if (errno != EINTR)
			return -errno;
	}
}

int tsrun_pidfd_open(int pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	return fd < 0 ? -errno : fd;
}

int tsrun_pidfd_signal(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

/* Wait until the process behind PIDFD exits: 1 = exited, 0 = timeout. */
int tsrun_pidfd_wait(int pidfd, int timeout_ms)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		return r > 0 ? 1 : 0;
	}
}

int tsrun_set_subreaper(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -errno : 0;
}

int tsrun_close(int fd) { return close(fd) < 0 ? -errno : 0; }

int tsrun_mkfifo(const char *path, unsigned int mode) { return mkfifo(path, (mode_t)mode) < 0 ? -errno : 0; }

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
