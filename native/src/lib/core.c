/* libtsrun: the few syscalls the engines cannot make (bound by lib/sys:
 * koffi on Node, bun:ffi on Bun). No policy here: every decision is made in
 * TypeScript. This part: memfds, spawning the stage, the sync socket,
 * waiting for and signalling processes. */
#include "lib.h"

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

