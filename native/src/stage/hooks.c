/* Hooks the stage runs: startContainer hooks in the container (after GO,
 * under the container's filter), and the two helper modes the runtime
 * spawns: `hook` (a hook in the runtime's namespaces that dies with it) and
 * `nsexec` (a createContainer hook in the container's namespaces). */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* the hook's exit status, killing it after TIMEOUT seconds (0: none) */
static int wait_hook(pid_t pid, uint32_t timeout, int *timed_out)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	*timed_out = 0;
	if (pidfd >= 0) {
		struct pollfd pf = {.fd = pidfd, .events = POLLIN};
		int r;
		do
			r = poll(&pf, 1, timeout ? (int)timeout * 1000 : -1);
		while (r < 0 && errno == EINTR);
		close(pidfd);
		if (r == 0) {
			kill(pid, SIGKILL);
			*timed_out = 1;
		}
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

void run_start_hooks(const struct plan *pl, const char *state, size_t slen)
{
	for (int i = 0; i < pl->nhooks; i++) {
		const struct hook *h = &pl->hooks[i];
		int pfd[2];
		if (pipe2(pfd, O_CLOEXEC) < 0)
			die(errno, "startContainer hook %s: pipe", h->path);
		pid_t pid = fork();
		if (pid < 0)
			die(errno, "startContainer hook %s: fork", h->path);
		if (pid == 0) {
			dup2(pfd[0], 0);
			execve(h->path, h->argv, h->envp);
			_exit(127);
		}
		close(pfd[0]);
		/* a hook that exits without reading: its status is the error, not EPIPE */
		signal(SIGPIPE, SIG_IGN);
		if (write(pfd[1], state, slen) < 0) {
		}
		close(pfd[1]);
		int timed_out, st = wait_hook(pid, h->timeout, &timed_out);
		if (timed_out)
			die(ETIMEDOUT, "startContainer hook #%d %s: timed out after %us", i, h->path, h->timeout);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die(0, "startContainer hook #%d %s: %s %d", i, h->path,
			    WIFEXITED(st) ? "exit status" : "killed by signal",
			    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	}
}

/* Hooks in the runtime namespace: die with the runtime (a kill -9 of tsrun
 * must not leave a hook running), then become the hook.
 *   hook PARENT PATH ARGS... */
int stage_hook(int argc, char **argv)
{
	extern char **environ;
	if (argc < 4)
		return 2;
	pid_t parent = (pid_t)atoi(argv[2]);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != parent)
		return 137; /* the runtime is already gone */
	reset_signals();
	execve(argv[3], argv + 4, environ);
	fprintf(stderr, "tsrun: hook %s: %s\n", argv[3], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

/* every namespace of PID that differs from ours, joined (user first) */
static int join_ns_of(int pid, const char *hook)
{
	int fds[NS_COUNT];
	for (int i = 0; i < NS_COUNT; i++) {
		char p[64], s[64];
		struct stat a, b;
		snprintf(p, sizeof p, "/proc/%d/ns/%s", pid, NS_KINDS[i].name);
		snprintf(s, sizeof s, "/proc/self/ns/%s", NS_KINDS[i].name);
		fds[i] = -1;
		if (stat(p, &a) < 0 || stat(s, &b) < 0 || (a.st_ino == b.st_ino && a.st_dev == b.st_dev))
			continue;
		fds[i] = open(p, O_RDONLY | O_CLOEXEC);
	}
	for (int i = 0; i < NS_COUNT; i++)
		if (fds[i] >= 0 && setns(fds[i], 0) < 0) {
			fprintf(stderr, "tsrun: hook %s: join %s namespace of %d: %s\n", hook, NS_KINDS[i].name, pid, strerror(errno));
			return -1;
		}
	return 0;
}

/* createContainer hooks: nsexec PID CWD PATH ARGS...: PATH resolved here,
 * run in the namespaces of PID with CWD (the rootfs: joining a mount
 * namespace leaves the cwd at its root, which is still the host's). */
int stage_nsexec(int argc, char **argv)
{
	extern char **environ;
	if (argc < 5)
		return 2;
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	int pid = atoi(argv[2]);
	const char *cwd = argv[3], *path = argv[4];
	int exe = open(path, O_RDONLY);
	if (exe < 0) {
		fprintf(stderr, "tsrun: hook %s: %s\n", path, strerror(errno));
		return 127;
	}
	if (join_ns_of(pid, path) < 0)
		return 126;
	if (*cwd && chdir(cwd) < 0) {
		fprintf(stderr, "tsrun: hook %s: chdir %s: %s\n", path, cwd, strerror(errno));
		return 126;
	}
	pid_t c = fork();
	if (c < 0)
		return 126;
	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		syscall(SYS_execveat, exe, "", argv + 5, environ, AT_EMPTY_PATH);
		fprintf(stderr, "tsrun: hook %s: exec: %s\n", path, strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(c, &st, 0) < 0)
		if (errno != EINTR)
			return 126;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}
