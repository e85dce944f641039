/* The process's attributes (rlimits, priorities, affinity, personality, LSM
 * label, seccomp), its cwd and the executable it will become. */
#include "stage.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../include/fdpass.h"

static const char *env_get(const struct plan *pl, const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; i < pl->envc; i++)
		if (strncmp(pl->envp[i], name, n) == 0 && pl->envp[i][n] == '=')
			return pl->envp[i] + n + 1;
	return NULL;
}

static int is_exec_file(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		debugf("lookup %s: %s", path, strerror(errno));
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	if (access(path, X_OK) < 0) {
		debugf("lookup %s: %s", path, strerror(errno));
		return 0;
	}
	return 1;
}

/* runc's (Go's) words, lower case: podman and containerd match them */
static void check_exec_path(struct plan *pl, const char *a0)
{
	struct stat st;
	if (stat(a0, &st) < 0) {
		int e = errno;
		char msg[128];
		snprintf(msg, sizeof msg, "%s", strerror(e));
		msg[0] = (char)tolower((unsigned char)msg[0]);
		die(e, "exec: \"%s\": stat %s: %s", a0, a0, msg);
	}
	if (S_ISDIR(st.st_mode))
		die(EISDIR, "exec: \"%s\": is a directory", a0);
	if (!is_exec_file(a0))
		die(EACCES, "exec: \"%s\": permission denied", a0);
	snprintf(pl->exec_path, sizeof pl->exec_path, "%s", a0);
}

void resolve_executable(struct plan *pl)
{
	const char *a0 = pl->argv[0];
	if (strchr(a0, '/')) {
		check_exec_path(pl, a0);
		return;
	}
	const char *path = env_get(pl, "PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (const char *p = path;;) {
		const char *e = strchr(p, ':');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char cand[PATH_MAX];
		if (l == 0)
			snprintf(cand, sizeof cand, "./%s", a0);
		else
			snprintf(cand, sizeof cand, "%.*s/%s", (int)l, p, a0);
		if (is_exec_file(cand)) {
			snprintf(pl->exec_path, sizeof pl->exec_path, "%s", cand);
			return;
		}
		if (!e)
			break;
		p = e + 1;
	}
	die(ENOENT, "exec: \"%s\": executable file not found in $PATH", a0);
}

void reset_signals(void)
{
	sigset_t s;
	for (int i = 1; i < _NSIG; i++)
		signal(i, SIG_DFL);
	sigemptyset(&s);
	sigprocmask(SIG_SETMASK, &s, NULL);
}

void set_affinity(const struct plan *pl, int when)
{
	if (!pl->aff[when])
		return;
	if (syscall(SYS_sched_setaffinity, 0, pl->aff_len[when], pl->aff[when]) < 0)
		die(errno, "process.execCPUAffinity.%s: sched_setaffinity", when ? "final" : "initial");
}

/* ioPriority and scheduler: while still privileged */
void set_priorities(const struct plan *pl)
{
	if (pl->has_ioprio && syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, (int)pl->ioprio) < 0)
		die(errno, "process.ioPriority: ioprio_set");
	if (pl->has_sched && syscall(SYS_sched_setattr, 0, &pl->sched, 0) < 0)
		die(errno, "process.scheduler: sched_setattr (policy %u)", pl->sched.policy);
}

/* linux.memoryPolicy: inherited by the process across execve */
void set_memory_policy(const struct plan *pl)
{
	if (!pl->has_mempolicy)
		return;
	/* the mask copied aligned: the plan's bytes may sit at any offset */
	uint64_t mask[1024 / 64] = {0};
	size_t bytes = pl->mempolicy_maxnode / 8;
	if (bytes > sizeof mask)
		die(E2BIG, "linux.memoryPolicy: node mask too large");
	memcpy(mask, pl->mempolicy_mask, bytes);
	/* maxnode counts one past the last bit (the kernel reads maxnode - 1) */
	if (syscall(SYS_set_mempolicy, (int)pl->mempolicy_mode, bytes ? mask : NULL, bytes ? (unsigned long)pl->mempolicy_maxnode + 1 : 0UL) < 0)
		die(errno, "linux.memoryPolicy: set_mempolicy(mode 0x%x)", pl->mempolicy_mode);
}

void set_rlimits(const struct plan *pl)
{
	for (int i = 0; i < pl->nrl; i++) {
		struct rlimit r = {.rlim_cur = pl->rl[i].soft, .rlim_max = pl->rl[i].hard};
		if (setrlimit((int)pl->rl[i].res, &r) < 0)
			die(errno, "setrlimit %u (soft %llu, hard %llu)", pl->rl[i].res,
			    (unsigned long long)pl->rl[i].soft, (unsigned long long)pl->rl[i].hard);
	}
}

void set_names_and_keyring(const struct plan *pl)
{
	if (pl->has_hostname && sethostname(pl->hostname, strlen(pl->hostname)) < 0)
		die(errno, "sethostname %s", pl->hostname);
	if (pl->has_domainname && setdomainname(pl->domainname, strlen(pl->domainname)) < 0)
		die(errno, "setdomainname %s", pl->domainname);
	if (pl->new_keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, pl->keyring) < 0 &&
	    errno != ENOSYS && errno != EACCES && errno != EPERM)
		die(errno, "join session keyring %s", pl->keyring);
}

/* The LSM label the process gets at execve: its attr file opened now,
 * through the runtime's procfs (the container's /proc may be anything),
 * written at the last moment. An fd of a file, not of a directory: a cwd
 * through /proc/self/fd cannot enter it. */
void open_lsm_exec(struct plan *pl)
{
	if (!pl->lsm)
		return;
	char rel[64];
	snprintf(rel, sizeof rel, "thread-self/attr/%s/exec", pl->lsm);
	pl->lsm_fd = procfs_open_file(pl->procfd, rel, O_WRONLY);
	if (pl->lsm_fd < 0)
		pl->lsm_fd = procfs_open_file(pl->procfd, "thread-self/attr/exec", O_WRONLY);
	if (pl->lsm_fd < 0)
		die(errno, "set the %s label for exec (%s): open its attr file", pl->lsm, pl->lsm_value);
}

void set_lsm_exec(const struct plan *pl)
{
	if (!pl->lsm)
		return;
	size_t n = strlen(pl->lsm_value);
	ssize_t w;
	do
		w = write(pl->lsm_fd, pl->lsm_value, n);
	while (w < 0 && errno == EINTR);
	if (w < 0 || (size_t)w != n)
		die(w < 0 ? errno : EIO, "set the %s label for exec (%s)", pl->lsm, pl->lsm_value);
	close(pl->lsm_fd);
}

/* Load the compiled filter. Without no_new_privs this needs CAP_SYS_ADMIN,
 * so it happens before the identity switch; with it, at the last moment.
 * A filter with a listener sends the listener fd to the runtime, which hands
 * it to the listener socket with the container state. */
void load_seccomp(struct plan *pl)
{
	if (!pl->seccomp_len)
		return;
	struct {
		unsigned short len;
		const void *filter;
	} prog = {(unsigned short)(pl->seccomp_len / 8), pl->seccomp};
	long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, pl->seccomp_flags, &prog);
	if (fd < 0)
		die(errno, "load seccomp filter");
	if (pl->seccomp_notify) {
		struct tsrun_msg_hdr h = {.type = M_SECCOMP};
		if (tsrun_send_fd(chan_fd(), (int)fd, &h, sizeof h) < 0)
			die(errno, "seccomp: send the listener fd");
		close((int)fd);
	}
	pl->seccomp_len = 0;
}

/* process.cwd. FIRST: as the runtime; EACCES/EPERM there returns 1 to try
 * again after the identity switch (the container user's own volume). Then
 * CVE-2024-21626: the cwd must be inside the container's root. */
int enter_cwd(const struct plan *pl, int first)
{
	if (!pl->cwd)
		return 0;
	if (chdir(pl->cwd) < 0) {
		if (first && (errno == EACCES || errno == EPERM))
			return 1;
		die(errno, "chdir to cwd (\"%s\") set in config.json", pl->cwd);
	}
	char buf[PATH_MAX];
	if (!getcwd(buf, sizeof buf))
		die(errno, "cwd %s is not inside the container", pl->cwd);
	return 0;
}

struct dirent64_s {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

/* Close every fd in [lo, hi]: close_range, or where the kernel lacks it
 * (ENOSYS, < 5.9) each open fd listed in /proc/self/fd. A failure is fatal:
 * an fd left open would cross into the container. */
void close_fds(unsigned int lo, unsigned int hi)
{
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return;
	if (errno != ENOSYS && errno != EINVAL)
		die(errno, "close_range %u-%u", lo, hi);
	int d = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		die(errno, "close inherited fds: open /proc/self/fd");
	char buf[4096];
	int fds[1024], n = 0;
	long got;
	while ((got = syscall(SYS_getdents64, d, buf, sizeof buf)) > 0)
		for (long off = 0; off < got;) {
			struct dirent64_s *e = (void *)(buf + off);
			long fd = strtol(e->name, NULL, 10);
			if (e->name[0] >= '0' && e->name[0] <= '9' && fd != d && (unsigned long)fd >= lo && (unsigned long)fd <= hi) {
				if (n == 1024)
					die(E2BIG, "close inherited fds: more than 1024 open");
				fds[n++] = (int)fd;
			}
			off += e->reclen;
		}
	close(d);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}
