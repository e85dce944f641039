/* tsrun-stage: the small static program that becomes the container.
 *
 * The runtime (Node) spawns it from a sealed memfd copy (so /proc/<pid>/exe of
 * anything the container can reach is never a writable host binary) with the
 * launch plan in a memfd and one end of a SOCK_SEQPACKET socket. It is
 * single-threaded and never returns into Node: every path ends in execve or
 * _exit.
 *
 *   tsrun-stage init SYNCFD PLANFD    set up and become the container init
 *   tsrun-stage nsexec PID PATH ARGS  run PATH inside the namespaces of PID
 *                                     (createContainer hooks)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/personality.h>
#include <termios.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "../include/tsrun.h"
#include "../include/fdpass.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_seccomp
#define SYS_seccomp 317
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#define SYS_move_mount 429
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef RESOLVE_NO_XDEV
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#define RESOLVE_IN_ROOT 0x10
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef KEYCTL_JOIN_SESSION_KEYRING
#define KEYCTL_JOIN_SESSION_KEYRING 1
#endif
#ifndef SYS_keyctl
#define SYS_keyctl 250
#endif

struct open_how_s {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};
struct mount_attr_s {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

/* ---------------------------------------------------------------- plan --- */

struct mnt {
	struct tsrun_mount_hdr h;
	const char *src, *dst, *type, *data;
	/* idmapped bind: maps or a userns path; tree = detached clone made by the stage */
	int idmap, idmap_rec;
	const char *id_uid, *id_gid, *id_userns;
	int tree;
};
struct dev {
	struct tsrun_device_hdr h;
	const char *path;
};
struct rlim {
	uint32_t res;
	uint64_t soft, hard;
};
struct hook {
	uint32_t timeout;
	char **argv;
	char **envp;
	const char *path;
};
struct join {
	uint32_t type;
	const char *path;
	int fd;
};

#define MAXN 1024
static struct {
	const char *rootfs;
	int root_readonly, no_pivot, sync_hooks, dev_setup, userns_devices, debug, has_propagation;
	uint32_t propagation;
	uint32_t ns_new;
	struct join joins[16];
	int njoins;
	const char *uid_map, *gid_map, *timens;
	const char *cgroup_procs[32];
	int ncgroups;
	int has_oom;
	int32_t oom;
	const char *hostname, *domainname;
	int has_hostname, has_domainname;
	const char *sysctl_k[MAXN], *sysctl_v[MAXN];
	int nsysctl;
	struct mnt mounts[MAXN];
	int nmounts;
	struct dev devs[MAXN];
	int ndevs;
	const char *link_target[64], *link_path[64];
	int nlinks;
	const char *masked[MAXN];
	int nmasked;
	const char *ro[MAXN];
	int nro;
	struct rlim rl[64];
	int nrl;
	int has_user;
	uint32_t uid, gid;
	int32_t umask_v;
	uint32_t ngroups;
	gid_t groups[256];
	int has_caps;
	uint64_t caps[5];
	int nnp;
	const char *cwd;
	char *argv[4096];
	int argc;
	char *envp[4096];
	int envc;
	const char *fifo;
	struct hook hooks[64];
	int nhooks;
	const char *keyring;
	int new_keyring;
	const uint8_t *seccomp;
	uint32_t seccomp_len, seccomp_flags, seccomp_notify;
	uint32_t preserve;
	int terminal;
	uint32_t term_flags, rows, cols;
	const char *console_path;
	int has_personality, has_ioprio, has_sched;
	uint32_t personality, ioprio;
	struct {
		uint32_t size, policy;
		uint64_t flags;
		int32_t nice;
		uint32_t priority;
		uint64_t runtime, deadline, period;
	} sched;
	const uint8_t *aff[2];
	uint32_t aff_len[2];
	const char *lsm, *lsm_value;
} P;

static int console_sock = -1;

static int syncfd = -1;
/* the exec fifo, open for writing while startContainer hooks run: die() reports there */
static int start_result_fd = -1;

/* ------------------------------------------------------------- helpers --- */

static void send_msg(uint32_t type, int err, const char *payload, size_t len)
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

/* Report an error with its errno and context, then die. After the runtime has
 * gone (no sync socket) the line goes to the container's stderr. */
static void __attribute__((noreturn, format(printf, 2, 3))) die(int err, const char *fmt, ...)
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
	if (syncfd >= 0) {
		send_msg(M_ERROR, err, buf, (size_t)n);
	} else if (start_result_fd >= 0) {
		/* start is waiting on the exec fifo: the error goes there (E + text) */
		char line[TSRUN_MSG_MAX + 64];
		int m = snprintf(line, sizeof line, "E%s%s%s", buf, err ? ": " : "", err ? strerror(err) : "");
		if (m > 0 && write(start_result_fd, line, (size_t)(m < (int)sizeof line ? m : (int)sizeof line - 1)) < 0) {
		}
	} else {
		char line[TSRUN_MSG_MAX + 64];
		int m = snprintf(line, sizeof line, "tsrun: %s%s%s\n", buf, err ? ": " : "",
				 err ? strerror(err) : "");
		if (m > 0 && write(2, line, (size_t)(m < (int)sizeof line ? m : (int)sizeof line - 1)) < 0) {
		}
	}
	_exit(1);
}

static void debugf(const char *fmt, ...)
{
	if (!P.debug)
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

static int recv_msg(struct tsrun_msg_hdr *h, char *payload, size_t cap)
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

static int write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, data, len);
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return -1;
	}
	if ((size_t)n != len) {
		errno = EIO;
		return -1;
	}
	return 0;
}

static int openat2_in_root(int rootfd, const char *path, uint64_t flags, uint64_t resolve)
{
	struct open_how_s how = {.flags = flags | O_CLOEXEC, .mode = 0, .resolve = resolve};
	int fd;
	do
		fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
	while (fd < 0 && errno == EAGAIN);
	return fd;
}

static char fdpath_buf[4][64];
static int fdpath_i;
static const char *fdpath(int fd)
{
	char *b = fdpath_buf[fdpath_i++ & 3];
	snprintf(b, 64, "/proc/self/fd/%d", fd);
	return b;
}

/* Resolve PATH inside ROOTFD, creating what is missing: the equivalent of
 * openat2(RESOLVE_IN_ROOT) with mkdir -p. Walks one component at a time with
 * O_NOFOLLOW, holding an fd for every directory on the way, so nothing can be
 * swapped under it; ".." never climbs above the root and a symlink is read and
 * resolved as if the rootfs were "/" (an absolute one restarts at the root).
 * Missing directories (and the last component as an empty file when
 * LAST_IS_FILE) are created inside the rootfs, never through a link to the
 * host (CVE-2024-45310). NO_SYMLINKS refuses any symlink with ELOOP (/proc,
 * /sys destinations: CVE-2019-19921). Returns an O_PATH fd or -1/errno. */
#define WALK_MAX_DEPTH 256
static int mkpath_in_root(int rootfd, const char *path, int last_is_file, mode_t mode, int no_symlinks)
{
	static char work[2 * PATH_MAX], tmp[2 * PATH_MAX];
	int stack[WALK_MAX_DEPTH];
	int depth = 0, links = 0, result = -1, err = 0;
	if (strlen(path) >= sizeof work) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(work, sizeof work, "%s", path);
	stack[0] = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (stack[0] < 0)
		return -1;
	char *p = work;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p) {
			result = openat(stack[depth], ".", O_PATH | O_CLOEXEC);
			if (result < 0)
				err = errno;
			break;
		}
		char *c = p;
		char *slash = strchr(p, '/');
		char *rest = slash ? slash + 1 : p + strlen(p);
		if (slash)
			*slash = 0;
		const char *r2 = rest;
		while (*r2 == '/')
			r2++;
		int last = !*r2;
		if (strcmp(c, ".") == 0) {
			p = rest;
			continue;
		}
		if (strcmp(c, "..") == 0) {
			if (depth > 0)
				close(stack[depth--]);
			p = rest;
			continue;
		}
		int fd = openat(stack[depth], c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT) {
			int r;
			if (last && last_is_file) {
				r = openat(stack[depth], c, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
				if (r >= 0)
					close(r);
			} else {
				r = mkdirat(stack[depth], c, last ? mode : 0755);
			}
			if (r < 0 && errno != EEXIST) {
				err = errno;
				break;
			}
			fd = openat(stack[depth], c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0) {
			err = errno;
			break;
		}
		struct stat st;
		if (fstat(fd, &st) < 0) {
			err = errno;
			close(fd);
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			char link[PATH_MAX];
			ssize_t n = readlinkat(fd, "", link, sizeof link - 1);
			close(fd);
			if (no_symlinks || ++links > 40) {
				err = ELOOP;
				break;
			}
			if (n <= 0) {
				err = n < 0 ? errno : ENOENT;
				break;
			}
			link[n] = 0;
			if (snprintf(tmp, sizeof tmp, "%s/%s", link, rest) >= (int)sizeof tmp) {
				err = ENAMETOOLONG;
				break;
			}
			memcpy(work, tmp, strlen(tmp) + 1);
			p = work;
			if (link[0] == '/')
				while (depth > 0)
					close(stack[depth--]);
			continue;
		}
		if (last) {
			result = fd;
			break;
		}
		if (!S_ISDIR(st.st_mode)) {
			close(fd);
			err = ENOTDIR;
			break;
		}
		if (depth + 1 >= WALK_MAX_DEPTH) {
			close(fd);
			err = ENAMETOOLONG;
			break;
		}
		stack[++depth] = fd;
		p = rest;
	}
	while (depth >= 0)
		close(stack[depth--]);
	if (result < 0)
		errno = err ? err : ENOENT;
	return result;
}

/* ------------------------------------------------------------ parsing --- */

static const char *str_at(const uint8_t *p, uint32_t len, uint32_t *off)
{
	if (*off >= len)
		die(EINVAL, "launch plan: string out of bounds");
	const char *s = (const char *)p + *off;
	const void *nul = memchr(s, 0, len - *off);
	if (!nul)
		die(EINVAL, "launch plan: unterminated string");
	*off += (uint32_t)((const char *)nul - s) + 1;
	return s;
}

static uint32_t u32_at(const uint8_t *p, uint32_t len, uint32_t *off)
{
	uint32_t v;
	if (*off + 4 > len)
		die(EINVAL, "launch plan: integer out of bounds");
	memcpy(&v, p + *off, 4);
	*off += 4;
	return v;
}

static uint64_t u64_at(const uint8_t *p, uint32_t len, uint32_t *off)
{
	uint64_t v;
	if (*off + 8 > len)
		die(EINVAL, "launch plan: integer out of bounds");
	memcpy(&v, p + *off, 8);
	*off += 8;
	return v;
}

#define NEED(cond, what) \
	do { if (!(cond)) die(E2BIG, "launch plan: too many %s", what); } while (0)

static void parse_plan(const uint8_t *buf, size_t size)
{
	uint32_t magic, abi;
	if (size < 8)
		die(EINVAL, "launch plan: too short");
	memcpy(&magic, buf, 4);
	memcpy(&abi, buf + 4, 4);
	if (magic != TSRUN_PLAN_MAGIC || abi != TSRUN_ABI_VERSION)
		die(EINVAL, "launch plan: ABI mismatch (stage %d, plan %u): rebuild tsrun", TSRUN_ABI_VERSION, abi);
	P.umask_v = -1;
	P.propagation = MS_SLAVE | MS_REC;
	size_t pos = 8;
	while (pos < size) {
		uint16_t tag;
		uint32_t len, o = 0;
		if (pos + 8 > size)
			die(EINVAL, "launch plan: truncated record");
		memcpy(&tag, buf + pos, 2);
		memcpy(&len, buf + pos + 4, 4);
		pos += 8;
		if (len > size - pos)
			die(EINVAL, "launch plan: record %u overruns", tag);
		const uint8_t *p = buf + pos;
		pos += len;
		switch (tag) {
		case T_ROOTFS: P.rootfs = str_at(p, len, &o); break;
		case T_ROOT_READONLY: P.root_readonly = 1; break;
		case T_ROOT_PROPAGATION: P.propagation = u32_at(p, len, &o); P.has_propagation = 1; break;
		case T_NO_PIVOT: P.no_pivot = 1; break;
		case T_NS_NEW: P.ns_new = u32_at(p, len, &o); break;
		case T_NS_JOIN:
			NEED(P.njoins < 16, "namespaces");
			P.joins[P.njoins].type = u32_at(p, len, &o);
			P.joins[P.njoins].path = str_at(p, len, &o);
			P.joins[P.njoins].fd = -1;
			P.njoins++;
			break;
		case T_UID_MAP: P.uid_map = str_at(p, len, &o); break;
		case T_GID_MAP: P.gid_map = str_at(p, len, &o); break;
		case T_TIMENS_OFFSETS: P.timens = str_at(p, len, &o); break;
		case T_CGROUP_PROCS:
			NEED(P.ncgroups < 32, "cgroups");
			P.cgroup_procs[P.ncgroups++] = str_at(p, len, &o);
			break;
		case T_OOM_SCORE_ADJ: P.has_oom = 1; P.oom = (int32_t)u32_at(p, len, &o); break;
		case T_HOSTNAME: P.has_hostname = 1; P.hostname = str_at(p, len, &o); break;
		case T_DOMAINNAME: P.has_domainname = 1; P.domainname = str_at(p, len, &o); break;
		case T_SYSCTL:
			NEED(P.nsysctl < MAXN, "sysctls");
			P.sysctl_k[P.nsysctl] = str_at(p, len, &o);
			P.sysctl_v[P.nsysctl++] = str_at(p, len, &o);
			break;
		case T_MOUNT: {
			NEED(P.nmounts < MAXN, "mounts");
			struct mnt *m = &P.mounts[P.nmounts++];
			if (len < sizeof m->h)
				die(EINVAL, "launch plan: short mount");
			memcpy(&m->h, p, sizeof m->h);
			o = sizeof m->h;
			m->src = str_at(p, len, &o);
			m->dst = str_at(p, len, &o);
			m->type = str_at(p, len, &o);
			m->data = str_at(p, len, &o);
			m->tree = -1;
			break;
		}
		case T_MOUNT_IDMAP: {
			if (P.nmounts == 0)
				die(EINVAL, "launch plan: idmap without a mount");
			struct mnt *m = &P.mounts[P.nmounts - 1];
			m->idmap = 1;
			m->idmap_rec = (int)u32_at(p, len, &o);
			m->id_uid = str_at(p, len, &o);
			m->id_gid = str_at(p, len, &o);
			m->id_userns = str_at(p, len, &o);
			break;
		}
		case T_DEVICE: {
			NEED(P.ndevs < MAXN, "devices");
			struct dev *d = &P.devs[P.ndevs++];
			if (len < sizeof d->h)
				die(EINVAL, "launch plan: short device");
			memcpy(&d->h, p, sizeof d->h);
			o = sizeof d->h;
			d->path = str_at(p, len, &o);
			break;
		}
		case T_SYMLINK:
			NEED(P.nlinks < 64, "symlinks");
			P.link_target[P.nlinks] = str_at(p, len, &o);
			P.link_path[P.nlinks++] = str_at(p, len, &o);
			break;
		case T_MASKED: NEED(P.nmasked < MAXN, "masked paths"); P.masked[P.nmasked++] = str_at(p, len, &o); break;
		case T_READONLY_PATH: NEED(P.nro < MAXN, "readonly paths"); P.ro[P.nro++] = str_at(p, len, &o); break;
		case T_RLIMIT:
			NEED(P.nrl < 64, "rlimits");
			P.rl[P.nrl].res = u32_at(p, len, &o);
			u32_at(p, len, &o);
			P.rl[P.nrl].soft = u64_at(p, len, &o);
			P.rl[P.nrl].hard = u64_at(p, len, &o);
			P.nrl++;
			break;
		case T_USER:
			P.has_user = 1;
			P.uid = u32_at(p, len, &o);
			P.gid = u32_at(p, len, &o);
			P.umask_v = (int32_t)u32_at(p, len, &o);
			break;
		case T_GROUPS:
			P.ngroups = u32_at(p, len, &o);
			NEED(P.ngroups <= 256, "additional gids");
			for (uint32_t i = 0; i < P.ngroups; i++)
				P.groups[i] = u32_at(p, len, &o);
			break;
		case T_CAPS:
			P.has_caps = 1;
			for (int i = 0; i < 5; i++)
				P.caps[i] = u64_at(p, len, &o);
			break;
		case T_NO_NEW_PRIVS: P.nnp = 1; break;
		case T_CWD: P.cwd = str_at(p, len, &o); break;
		case T_ARG: NEED(P.argc < 4095, "args"); P.argv[P.argc++] = (char *)str_at(p, len, &o); break;
		case T_ENV: NEED(P.envc < 4095, "env"); P.envp[P.envc++] = (char *)str_at(p, len, &o); break;
		case T_FIFO: P.fifo = str_at(p, len, &o); break;
		case T_SYNC_HOOKS: P.sync_hooks = 1; break;
		case T_START_HOOK: {
			NEED(P.nhooks < 64, "hooks");
			struct hook *h = &P.hooks[P.nhooks++];
			h->timeout = u32_at(p, len, &o);
			uint32_t na = u32_at(p, len, &o), ne = u32_at(p, len, &o);
			if (na > 1024 || ne > 1024)
				die(E2BIG, "launch plan: hook too large");
			h->path = str_at(p, len, &o);
			h->argv = calloc(na + 2, sizeof(char *));
			h->envp = calloc(ne + 1, sizeof(char *));
			if (!h->argv || !h->envp)
				die(ENOMEM, "launch plan");
			for (uint32_t i = 0; i < na; i++)
				h->argv[i] = (char *)str_at(p, len, &o);
			if (na == 0)
				h->argv[0] = (char *)h->path;
			for (uint32_t i = 0; i < ne; i++)
				h->envp[i] = (char *)str_at(p, len, &o);
			break;
		}
		case T_NEW_KEYRING: P.new_keyring = 1; P.keyring = str_at(p, len, &o); break;
		case T_DEV_SETUP: P.dev_setup = 1; break;
		case T_USERNS_DEVICES: P.userns_devices = 1; break;
		case T_SECCOMP:
			P.seccomp_flags = u32_at(p, len, &o);
			P.seccomp_notify = u32_at(p, len, &o);
			P.seccomp = p + o;
			P.seccomp_len = len - o;
			if (P.seccomp_len % 8)
				die(EINVAL, "launch plan: bad seccomp program");
			break;
		case T_TERMINAL:
			P.terminal = 1;
			P.term_flags = u32_at(p, len, &o);
			P.rows = u32_at(p, len, &o);
			P.cols = u32_at(p, len, &o);
			P.console_path = str_at(p, len, &o);
			break;
		case T_PERSONALITY: P.has_personality = 1; P.personality = u32_at(p, len, &o); break;
		case T_IOPRIO: P.has_ioprio = 1; P.ioprio = u32_at(p, len, &o); break;
		case T_SCHED:
			P.has_sched = 1;
			P.sched.size = sizeof P.sched;
			P.sched.policy = u32_at(p, len, &o);
			P.sched.priority = u32_at(p, len, &o);
			P.sched.nice = (int32_t)u32_at(p, len, &o);
			(void)u32_at(p, len, &o);
			P.sched.flags = u64_at(p, len, &o);
			P.sched.runtime = u64_at(p, len, &o);
			P.sched.deadline = u64_at(p, len, &o);
			P.sched.period = u64_at(p, len, &o);
			break;
		case T_AFFINITY: {
			uint32_t when = u32_at(p, len, &o);
			if (when > 1)
				die(EINVAL, "launch plan: bad affinity record");
			P.aff[when] = p + o;
			P.aff_len[when] = len - o;
			break;
		}
		case T_LSM_EXEC:
			P.lsm = str_at(p, len, &o);
			P.lsm_value = str_at(p, len, &o);
			break;
		case T_PRESERVE_FDS: P.preserve = u32_at(p, len, &o); break;
		case T_DEBUG: P.debug = 1; break;
		default:
			die(EINVAL, "launch plan: unknown record %u", tag);
		}
	}
	P.argv[P.argc] = NULL;
	P.envp[P.envc] = NULL;
	if (!P.rootfs || P.argc == 0)
		die(EINVAL, "launch plan: no rootfs or args");
}

/* -------------------------------------------------------------- mounts --- */

static unsigned long statvfs_to_ms(unsigned long f)
{
	unsigned long r = 0;
	if (f & ST_RDONLY) r |= MS_RDONLY;
	if (f & ST_NOSUID) r |= MS_NOSUID;
	if (f & ST_NODEV) r |= MS_NODEV;
	if (f & ST_NOEXEC) r |= MS_NOEXEC;
	if (f & ST_NOATIME) r |= MS_NOATIME;
	if (f & ST_NODIRATIME) r |= MS_NODIRATIME;
	if (f & ST_RELATIME) r |= MS_RELATIME;
	return r;
}

static int rootfd = -1;

static void do_mount(int idx, struct mnt *m)
{
	int is_file = (m->h.extra & TM_FILE) != 0;
	int no_symlinks = (m->h.extra & (TM_PROCFS | TM_SYSFS)) != 0;
	int fd = mkpath_in_root(rootfd, m->dst, is_file, is_file ? 0644 : 0755, no_symlinks);
	if (fd < 0) {
		if (errno == ELOOP && (m->h.extra & (TM_PROCFS | TM_SYSFS)))
			die(ELOOP, "mounts[%d]: %s destination %s is a symlink: filesystem \"%s\" must be mounted on ordinary directory",
			    idx, m->type, m->dst, m->type);
		die(errno, "mounts[%d]: create mount point %s in rootfs", idx, m->dst);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		die(errno, "mounts[%d]: stat %s", idx, m->dst);
	if ((m->h.extra & (TM_PROCFS | TM_SYSFS)) && !S_ISDIR(st.st_mode))
		die(ENOTDIR, "mounts[%d]: %s destination %s is not a directory: filesystem \"%s\" must be mounted on ordinary directory",
		    idx, m->type, m->dst, m->type);
	const char *target = fdpath(fd);
	unsigned long flags = m->h.flags;
	if (m->tree >= 0) {
		/* the detached clone the stage made (idmapped, or a bind into a new user namespace) */
		if (syscall(SYS_move_mount, m->tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			die(errno, "mounts[%d]: attach %s%s on %s", idx, m->idmap ? "idmapped " : "", m->src, m->dst);
		close(m->tree);
		m->tree = -1;
	} else if (m->h.extra & TM_BIND) {
		if (mount(m->src, target, NULL, flags & (MS_BIND | MS_REC), NULL) < 0)
			die(errno, "mounts[%d]: bind %s on %s", idx, m->src, m->dst);
	} else {
		if (mount(m->src, target, m->type, flags, *m->data ? m->data : NULL) < 0)
			die(errno, "mounts[%d]: mount %s (type %s) on %s, flags 0x%lx, data \"%s\"", idx, m->src, m->type, m->dst,
			    flags, m->data);
	}
	close(fd);
	if (!(m->h.extra & TM_REMOUNT_RO) && !m->h.pflags && !m->h.attr_set && !m->h.attr_clr)
		return;
	/* reopen: the new mount now sits on the destination */
	fd = openat2_in_root(rootfd, m->dst, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
	if (fd < 0)
		die(errno, "mounts[%d]: reopen %s", idx, m->dst);
	target = fdpath(fd);
	if (m->h.extra & TM_REMOUNT_RO) {
		struct statvfs sv;
		unsigned long keep = 0;
		if (fstatvfs(fd, &sv) == 0)
			keep = statvfs_to_ms(sv.f_flag) & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
		unsigned long rf = (flags & ~(MS_BIND | MS_REC | MS_REMOUNT)) | keep | MS_BIND | MS_REMOUNT;
		if (mount(NULL, target, NULL, rf, NULL) < 0)
			die(errno, "mounts[%d]: remount %s", idx, m->dst);
	}
	if (m->h.attr_set || m->h.attr_clr) {
		struct mount_attr_s a = {.attr_set = m->h.attr_set, .attr_clr = m->h.attr_clr};
		if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0)
			die(errno, "mounts[%d]: mount_setattr %s", idx, m->dst);
	}
	if (m->h.pflags && mount(NULL, target, NULL, m->h.pflags, NULL) < 0)
		die(errno, "mounts[%d]: set propagation of %s", idx, m->dst);
	close(fd);
}

/* The directory that will hold PATH (created inside the rootfs if missing),
 * opened for *at() calls; *NAME points at the last component. */
static int open_parent_in_root(const char *path, const char **name, const char *what)
{
	const char *slash = strrchr(path, '/');
	char parent[PATH_MAX];
	size_t pl = slash ? (size_t)(slash - path) : 0;
	if (pl >= sizeof parent)
		die(ENAMETOOLONG, "%s %s", what, path);
	memcpy(parent, path, pl);
	parent[pl] = 0;
	int pfd = mkpath_in_root(rootfd, pl ? parent : "/", 0, 0755, 0);
	if (pfd < 0)
		die(errno, "%s %s: create parent directory", what, path);
	int dfd = openat(pfd, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	close(pfd);
	if (dfd < 0)
		die(errno, "%s %s: open parent directory", what, path);
	*name = slash ? slash + 1 : path;
	return dfd;
}

static void make_devices(void)
{
	for (int i = 0; i < P.ndevs; i++) {
		struct dev *d = &P.devs[i];
		const char *name;
		int dfd = open_parent_in_root(d->path, &name, "device");
		unlinkat(dfd, name, 0);
		if (P.userns_devices) {
			int f = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0000);
			if (f < 0)
				die(errno, "device %s: create bind target", d->path);
			close(f);
			int tfd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (tfd < 0)
				die(errno, "device %s: open bind target", d->path);
			if (mount(d->path, fdpath(tfd), NULL, MS_BIND, NULL) < 0)
				die(errno, "device %s: bind from host", d->path);
			close(tfd);
		} else {
			mode_t t = d->h.type == 'b' ? S_IFBLK : d->h.type == 'p' ? S_IFIFO : S_IFCHR;
			if (mknodat(dfd, name, t | (d->h.mode & 07777), makedev(d->h.major, d->h.minor)) < 0)
				die(errno, "device %s: mknod", d->path);
			if (fchownat(dfd, name, d->h.uid, d->h.gid, AT_SYMLINK_NOFOLLOW) < 0)
				die(errno, "device %s: chown", d->path);
			if (fchmodat(dfd, name, d->h.mode & 07777, 0) < 0)
				die(errno, "device %s: chmod", d->path);
		}
		close(dfd);
	}
	for (int i = 0; i < P.nlinks; i++) {
		const char *lp = P.link_path[i];
		const char *name;
		int dfd = open_parent_in_root(lp, &name, "symlink");
		if (symlinkat(P.link_target[i], dfd, name) < 0 && errno != EEXIST)
			die(errno, "symlink %s -> %s", lp, P.link_target[i]);
		close(dfd);
	}
}

/* mountinfo's octal escapes (\040 for a space) undone in place */
static void unescape_mnt(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
}

static int under_rootfs(const char *p)
{
	size_t n = strlen(P.rootfs);
	return strncmp(p, P.rootfs, n) == 0 && (p[n] == 0 || p[n] == '/');
}

/* --no-pivot: the old root stays in the mount namespace under the moved
 * rootfs. The kernel lets a user namespace mount a new procfs or sysfs while
 * a full one is anywhere in the namespace, so unmount (or, if that is
 * refused, cover) every full proc and sysfs outside the rootfs, as runc does. */
static void hide_host_pseudofs(void)
{
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	struct statfs sf;
	if (fd < 0)
		die(errno, "--no-pivot: open /proc/self/mountinfo");
	if (fstatfs(fd, &sf) < 0 || sf.f_type != 0x9fa0 /* PROC_SUPER_MAGIC */)
		die(EXDEV, "--no-pivot: /proc/self/mountinfo is not on procfs");
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf)
			die(ENOMEM, "--no-pivot: read mountinfo");
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(errno, "--no-pivot: read mountinfo");
		if (n == 0)
			break;
		len += (size_t)n;
		if (cap - len < 4096)
			buf = realloc(buf, cap *= 2);
	}
	close(fd);
	buf[len] = 0;
	char *targets[256];
	int nt = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *f[5], *sep = strstr(line, " - "), *save;
		if (!sep)
			continue;
		*sep = 0;
		char *type = strtok_r(sep + 3, " ", &save);
		int i = 0;
		for (char *t = strtok_r(line, " ", &save); t && i < 5; t = strtok_r(NULL, " ", &save))
			f[i++] = t;
		if (i < 5 || !type || strcmp(f[3], "/") != 0 || (strcmp(type, "proc") != 0 && strcmp(type, "sysfs") != 0))
			continue;
		unescape_mnt(f[4]);
		if (under_rootfs(f[4]))
			continue;
		if (nt == 256)
			die(E2BIG, "--no-pivot: more than 256 proc and sysfs mounts to hide");
		targets[nt++] = f[4];
	}
	for (int i = 0; i < nt; i++) {
		/* unmount events must not reach the host */
		if (mount("", targets[i], NULL, MS_SLAVE | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue; /* under one already gone */
			die(errno, "--no-pivot: make %s a slave", targets[i]);
		}
		if (umount2(targets[i], MNT_DETACH) == 0)
			continue;
		if ((errno != EINVAL && errno != EPERM) || mount("tmpfs", targets[i], "tmpfs", 0, NULL) < 0)
			die(errno, "--no-pivot: hide the host's %s", targets[i]);
	}
	free(buf);
}

static void pivot(void)
{
	if (P.no_pivot) {
		hide_host_pseudofs();
		if (chdir(P.rootfs) < 0)
			die(errno, "chdir %s", P.rootfs);
		if (mount(P.rootfs, "/", NULL, MS_MOVE, NULL) < 0)
			die(errno, "move rootfs to / (--no-pivot)");
		if (chroot(".") < 0)
			die(errno, "chroot (--no-pivot)");
		if (chdir("/") < 0)
			die(errno, "chdir /");
		return;
	}
	int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (oldroot < 0)
		die(errno, "open /");
	int newroot = open(P.rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (newroot < 0)
		die(errno, "open rootfs %s", P.rootfs);
	if (fchdir(newroot) < 0)
		die(errno, "chdir to rootfs");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die(errno, "pivot_root %s", P.rootfs);
	if (fchdir(oldroot) < 0)
		die(errno, "chdir to old root");
	if (mount("", ".", "", MS_SLAVE | MS_REC, NULL) < 0)
		die(errno, "make old root rslave");
	if (umount2(".", MNT_DETACH) < 0)
		die(errno, "unmount old root");
	if (chdir("/") < 0)
		die(errno, "chdir /");
	close(oldroot);
	close(newroot);
}

/* The read-only mounts that had to stay writable while the rootfs was built
 * (a ro /dev: pts, devices, links), now read-only, their other flags kept. */
static void remount_deferred_ro(void)
{
	for (int i = 0; i < P.nmounts; i++) {
		struct mnt *m = &P.mounts[i];
		if (!(m->h.extra & TM_DEFER_RO))
			continue;
		int fd = openat2_in_root(AT_FDCWD, m->dst, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
		if (fd < 0)
			die(errno, "mounts[%d]: reopen %s to make it read-only", i, m->dst);
		struct statvfs sv;
		unsigned long keep = 0;
		if (fstatvfs(fd, &sv) == 0)
			keep = statvfs_to_ms(sv.f_flag) & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
		if (mount(NULL, fdpath(fd), NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL) < 0)
			die(errno, "mounts[%d]: remount %s read-only", i, m->dst);
		close(fd);
	}
}

static int open_devnull_verified(void)
{
	int fd = open("/dev/null", O_PATH | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0)
		die(errno, "open /dev/null for masking");
	if (fstat(fd, &st) < 0)
		die(errno, "stat /dev/null");
	if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
		die(EPERM, "/dev/null is not the null device (char 1:3): refusing to mask with it");
	return fd;
}

/* sysctls go through the container's /proc/sys, verified to be procfs and
 * walked without symlinks or mount crossings: a rootfs cannot redirect the
 * writes to another file. Before readonlyPaths, which usually hold /proc/sys. */
static void write_sysctls(void)
{
	if (!P.nsysctl)
		return;
	int dfd = openat2_in_root(AT_FDCWD, "/proc/sys", O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	if (dfd < 0)
		die(errno, "sysctl: open /proc/sys");
	struct statfs sf;
	if (fstatfs(dfd, &sf) < 0 || sf.f_type != 0x9fa0 /* PROC_SUPER_MAGIC */)
		die(EXDEV, "sysctl: /proc/sys in the container is not procfs");
	for (int i = 0; i < P.nsysctl; i++) {
		int fd = openat2_in_root(dfd, P.sysctl_k[i], O_WRONLY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
		if (fd < 0)
			die(errno, "sysctl %s", P.sysctl_k[i]);
		if (write(fd, P.sysctl_v[i], strlen(P.sysctl_v[i])) < 0)
			die(errno, "sysctl %s=%s", P.sysctl_k[i], P.sysctl_v[i]);
		close(fd);
	}
	close(dfd);
}

static void mask_and_readonly(void)
{
	int r = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int devnull = -1;
	if (r < 0)
		die(errno, "open /");
	for (int i = 0; i < P.nmasked; i++) {
		int fd = openat2_in_root(r, P.masked[i], O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			die(errno, "maskedPaths: %s", P.masked[i]);
		}
		struct stat st;
		if (fstat(fd, &st) < 0)
			die(errno, "maskedPaths: stat %s", P.masked[i]);
		if (S_ISDIR(st.st_mode)) {
			if (mount("tmpfs", fdpath(fd), "tmpfs", MS_RDONLY, "size=0") < 0)
				die(errno, "maskedPaths: mask %s", P.masked[i]);
		} else {
			if (devnull < 0)
				devnull = open_devnull_verified();
			if (mount(fdpath(devnull), fdpath(fd), NULL, MS_BIND, NULL) < 0)
				die(errno, "maskedPaths: mask %s", P.masked[i]);
		}
		close(fd);
	}
	if (devnull >= 0)
		close(devnull);
	for (int i = 0; i < P.nro; i++) {
		int fd = openat2_in_root(r, P.ro[i], O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			die(errno, "readonlyPaths: %s", P.ro[i]);
		}
		if (mount(fdpath(fd), fdpath(fd), NULL, MS_BIND | MS_REC, NULL) < 0)
			die(errno, "readonlyPaths: bind %s", P.ro[i]);
		close(fd);
		fd = openat2_in_root(r, P.ro[i], O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
		if (fd < 0)
			die(errno, "readonlyPaths: reopen %s", P.ro[i]);
		struct statvfs sv;
		unsigned long keep = 0;
		if (fstatvfs(fd, &sv) == 0)
			keep = statvfs_to_ms(sv.f_flag) & ~MS_RDONLY;
		if (mount(NULL, fdpath(fd), NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | keep, NULL) < 0)
			die(errno, "readonlyPaths: remount %s read-only", P.ro[i]);
		close(fd);
	}
	close(r);
}

/* The mount that holds the rootfs, made a slave when it is shared: the
 * rootfs bind below would otherwise propagate to the host, and pivot_root
 * refuses a shared parent. Found by the mount id statx reports, matched in
 * mountinfo. */
static void rootfs_parent_slave(void)
{
	uint8_t stx[256];
	memset(stx, 0, sizeof stx);
	if (syscall(SYS_statx, AT_FDCWD, P.rootfs, 0, 0x1000 /* STATX_MNT_ID */, stx) < 0)
		die(errno, "statx rootfs %s", P.rootfs);
	uint32_t mask;
	uint64_t mnt_id;
	memcpy(&mask, stx, 4);
	memcpy(&mnt_id, stx + 0x90, 8);
	if (!(mask & 0x1000))
		return;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		die(errno, "open /proc/self/mountinfo");
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		char mp[PATH_MAX], opt[4096];
		unsigned long long id;
		int n = 0;
		if (sscanf(line, "%llu %*u %*u:%*u %*s %4095s %*s%n", &id, mp, &n) < 2 || id != mnt_id)
			continue;
		/* optional fields up to " - " */
		char *rest = line + n, *end = strstr(rest, " - ");
		size_t ol = end ? (size_t)(end - rest) : 0;
		if (ol >= sizeof opt)
			ol = sizeof opt - 1;
		memcpy(opt, rest, ol);
		opt[ol] = 0;
		if (!strstr(opt, "shared:"))
			break;
		unescape_mnt(mp);
		/* a slave, not private (runc): pivot_root refuses a shared parent and our
		 * bind must not reach the host, but host mounts still reach a slave root */
		if (mount(NULL, mp, NULL, MS_SLAVE, NULL) < 0)
			die(errno, "make the mount holding the rootfs (%s) a slave", mp);
		break;
	}
	free(line);
	fclose(f);
}

static void setup_rootfs(void)
{
	/* an unbindable / could not be bound onto itself: rslave until the
	 * pivot, the configured type after it (runc applies it twice too) */
	unsigned long early = (P.propagation & MS_UNBINDABLE) ? MS_SLAVE | MS_REC : P.propagation;
	if (mount(NULL, "/", NULL, early, NULL) < 0)
		die(errno, "set propagation of / in the container mount namespace");
	if ((P.propagation & MS_SHARED) || !(P.propagation & MS_REC))
		rootfs_parent_slave();
	if (mount(P.rootfs, P.rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		die(errno, "bind rootfs %s onto itself", P.rootfs);
	rootfd = open(P.rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		die(errno, "open rootfs %s", P.rootfs);
	for (int i = 0; i < P.nmounts; i++)
		do_mount(i, &P.mounts[i]);
	debugf("mounts done");
	if (P.dev_setup || P.ndevs || P.nlinks)
		make_devices();
	debugf("devices done");
}

/* ------------------------------------------------------------ identity --- */

struct cap_hdr { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };

static void set_identity(void)
{
	if (P.has_caps) {
		for (int c = 0; c < 64; c++) {
			if (P.caps[0] & (1ULL << c))
				continue;
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
				die(errno, "drop capability %d from the bounding set", c);
		}
	}
	if (P.has_user) {
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			die(errno, "keep capabilities");
		if (setgroups(P.ngroups, P.groups) < 0 && !(errno == EPERM && P.ngroups == 0))
			die(errno, "setgroups");
		if (setresgid(P.gid, P.gid, P.gid) < 0)
			die(errno, "setgid %u", P.gid);
		if (setresuid(P.uid, P.uid, P.uid) < 0)
			die(errno, "setuid %u", P.uid);
		prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	}
	if (P.has_caps) {
		struct cap_hdr h = {.version = 0x20080522, .pid = 0};
		struct cap_data d[2];
		for (int i = 0; i < 2; i++) {
			d[i].effective = (uint32_t)(P.caps[1] >> (32 * i));
			d[i].permitted = (uint32_t)(P.caps[2] >> (32 * i));
			d[i].inheritable = (uint32_t)(P.caps[3] >> (32 * i));
		}
		if (syscall(SYS_capset, &h, d) < 0)
			die(errno, "capset");
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
			die(errno, "clear ambient capabilities");
		for (int c = 0; c < 64; c++)
			/* the kernel raises an ambient cap only if it is permitted and
			 * inheritable; like runc, a config that asks for more is not fatal */
			if ((P.caps[4] & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
				debugf("cannot raise ambient capability %d: %s", c, strerror(errno));
	}
}

/* ---------------------------------------------------------------- exec --- */

static const char *env_get(const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; i < P.envc; i++)
		if (strncmp(P.envp[i], name, n) == 0 && P.envp[i][n] == '=')
			return P.envp[i] + n + 1;
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

static char exec_path[PATH_MAX];

static void resolve_executable(void)
{
	const char *a0 = P.argv[0];
	if (strchr(a0, '/')) {
		struct stat st;
		if (stat(a0, &st) < 0)
		{
			/* runc's (Go's) words, lower case: podman and containerd match them */
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
		snprintf(exec_path, sizeof exec_path, "%s", a0);
		return;
	}
	const char *path = env_get("PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	const char *p = path;
	while (1) {
		const char *e = strchr(p, ':');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char cand[PATH_MAX];
		if (l == 0)
			snprintf(cand, sizeof cand, "./%s", a0);
		else
			snprintf(cand, sizeof cand, "%.*s/%s", (int)l, p, a0);
		if (is_exec_file(cand)) {
			snprintf(exec_path, sizeof exec_path, "%s", cand);
			return;
		}
		if (!e)
			break;
		p = e + 1;
	}
	die(ENOENT, "exec: \"%s\": executable file not found in $PATH", a0);
}

static void run_start_hooks(const char *state, size_t slen)
{
	for (int i = 0; i < P.nhooks; i++) {
		struct hook *h = &P.hooks[i];
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
		signal(SIGPIPE, SIG_IGN);
		if (write(pfd[1], state, slen) < 0) {
		}
		close(pfd[1]);
		int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		int timeout = h->timeout ? (int)h->timeout * 1000 : -1;
		if (pidfd >= 0) {
			struct pollfd pf = {.fd = pidfd, .events = POLLIN};
			int r;
			do
				r = poll(&pf, 1, timeout);
			while (r < 0 && errno == EINTR);
			if (r == 0) {
				kill(pid, SIGKILL);
				waitpid(pid, NULL, 0);
				die(ETIMEDOUT, "startContainer hook #%d %s: timed out after %us", i, h->path, h->timeout);
			}
			close(pidfd);
		}
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die(0, "startContainer hook #%d %s: %s %d", i, h->path,
			    WIFEXITED(st) ? "exit status" : "killed by signal",
			    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	}
}

static void reset_signals(void)
{
	sigset_t s;
	for (int i = 1; i < _NSIG; i++)
		signal(i, SIG_DFL);
	sigemptyset(&s);
	sigprocmask(SIG_SETMASK, &s, NULL);
}

/* -------------------------------------------------------------- phases --- */

static const char *ns_file(uint32_t t)
{
	switch (t) {
	case CLONE_NEWUSER: return "user";
	case CLONE_NEWIPC: return "ipc";
	case CLONE_NEWUTS: return "uts";
	case CLONE_NEWNET: return "net";
	case CLONE_NEWPID: return "pid";
	case CLONE_NEWNS: return "mnt";
	case CLONE_NEWCGROUP: return "cgroup";
	case CLONE_NEWTIME: return "time";
	}
	return "?";
}

static void join_namespaces(void)
{
	for (int i = 0; i < P.njoins; i++) {
		P.joins[i].fd = open(P.joins[i].path, O_RDONLY | O_CLOEXEC);
		if (P.joins[i].fd < 0)
			die(errno, "open %s namespace %s", ns_file(P.joins[i].type), P.joins[i].path);
	}
	/* the user namespace first: the others may be owned by it */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < P.njoins; i++) {
			int isuser = P.joins[i].type == CLONE_NEWUSER;
			if (pass == 0 ? !isuser : isuser)
				continue;
			if (setns(P.joins[i].fd, (int)P.joins[i].type) < 0)
				die(errno, "join %s namespace %s", ns_file(P.joins[i].type), P.joins[i].path);
			close(P.joins[i].fd);
		}
}

static void container_init(int waitfd, int fifofd);
static void set_affinity(int when);

/* The console socket is a host path: connect before the init enters the
 * container's mount namespace. */
static void connect_console(void)
{
	if (!P.terminal || !*P.console_path)
		return;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(P.console_path) >= sizeof a.sun_path)
		die(ENAMETOOLONG, "--console-socket %s", P.console_path);
	strcpy(a.sun_path, P.console_path);
	console_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (console_sock < 0)
		die(errno, "--console-socket: socket");
	if (connect(console_sock, (struct sockaddr *)&a, sizeof a) < 0)
		die(errno, "--console-socket: connect %s", P.console_path);
}

/* A pty from the container's own devpts: the master goes to the console
 * socket (or the runtime), the peer, opened from the master and never by
 * path, becomes /dev/console (CVE-2025-52565), the controlling terminal and
 * stdio. */
static void setup_terminal(int make_console)
{
	int ptmx = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (ptmx < 0)
		die(errno, "terminal: open /dev/ptmx");
	struct stat st;
	if (fstat(ptmx, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 || minor(st.st_rdev) != 2)
		die(EPERM, "terminal: /dev/ptmx is not the pty multiplexer (char 5:2)");
	int unlock = 0;
	if (ioctl(ptmx, TIOCSPTLCK, &unlock) < 0)
		die(errno, "terminal: unlock the pty");
	int peer = ioctl(ptmx, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (peer < 0)
		die(errno, "terminal: open the pty peer");
	if (P.rows || P.cols) {
		struct winsize ws = {.ws_row = (unsigned short)P.rows, .ws_col = (unsigned short)P.cols};
		if (ioctl(peer, TIOCSWINSZ, &ws) < 0)
			die(errno, "terminal: set consoleSize");
	}
	if (make_console) {
		int r = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (r < 0)
			die(errno, "open /");
		int c = mkpath_in_root(r, "/dev/console", 1, 0666, 1);
		if (c < 0)
			die(errno, "terminal: create /dev/console");
		if (mount(fdpath(peer), fdpath(c), NULL, MS_BIND, NULL) < 0)
			die(errno, "terminal: bind the pty onto /dev/console");
		close(c);
		close(r);
	}
	if (console_sock >= 0) {
		if (tsrun_send_fd(console_sock, ptmx, "/dev/ptmx", 9) < 0)
			die(errno, "--console-socket: send the pty master");
		close(console_sock);
		console_sock = -1;
	} else {
		struct tsrun_msg_hdr h = {.type = M_PTY};
		if (tsrun_send_fd(syncfd, ptmx, &h, sizeof h) < 0)
			die(errno, "terminal: send the pty master");
	}
	close(ptmx);
	if (setsid() < 0)
		die(errno, "terminal: setsid");
	if (ioctl(peer, TIOCSCTTY, 0) < 0)
		die(errno, "terminal: set the controlling terminal");
	for (int fd = 0; fd < 3; fd++)
		if (dup2(peer, fd) < 0)
			die(errno, "terminal: dup the pty to fd %d", fd);
	if (peer > 2)
		close(peer);
}

/* A user namespace with the given maps, for an idmapped mount: a child
 * clone()d into it waits on a pipe while we write its maps and open its ns
 * file, then exits. Returns the ns fd. */
static int make_userns(int idx, const char *uid_map, const char *gid_map)
{
	int pp[2];
	if (pipe2(pp, O_CLOEXEC) < 0)
		die(errno, "mounts[%d]: idmap: pipe", idx);
	pid_t h = (pid_t)syscall(SYS_clone, (unsigned long)CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (h < 0)
		die(errno, "mounts[%d]: idmap: new user namespace", idx);
	if (h == 0) {
		char c;
		close(pp[1]);
		while (read(pp[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(pp[0]);
	char path[64];
	int err = 0;
	const char *what = "";
	if (*uid_map) {
		snprintf(path, sizeof path, "/proc/%d/uid_map", h);
		if (write_file(path, uid_map, strlen(uid_map)) < 0)
			err = errno, what = "uidMappings";
	}
	if (!err && *gid_map) {
		snprintf(path, sizeof path, "/proc/%d/gid_map", h);
		if (write_file(path, gid_map, strlen(gid_map)) < 0)
			err = errno, what = "gidMappings";
	}
	int nsfd = -1;
	if (!err) {
		snprintf(path, sizeof path, "/proc/%d/ns/user", h);
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0)
			err = errno, what = "open user namespace";
	}
	close(pp[1]);
	while (waitpid(h, NULL, 0) < 0 && errno == EINTR)
		;
	if (err)
		die(err, "mounts[%d]: idmap: %s", idx, what);
	return nsfd;
}

/* Idmapped binds are cloned from the source and given their idmapping here,
 * before the init exists: mount_setattr(MOUNT_ATTR_IDMAP) needs privilege
 * over the target user namespace, which the stage has and the init (inside
 * the container's user namespace) does not. The init inherits the detached
 * trees and attaches them with move_mount. */
static void prepare_idmapped(void)
{
	for (int i = 0; i < P.nmounts; i++) {
		struct mnt *m = &P.mounts[i];
		/* a bind into a new user namespace: cloned here, as the runtime, so
		 * that a source the container's root cannot reach still mounts
		 * (runc opens mount sources before entering the user namespace).
		 * EPERM (an unprivileged runtime): by path in the container, as before */
		int early = !m->idmap && (m->h.extra & TM_BIND) && (P.ns_new & CLONE_NEWUSER);
		if (!m->idmap && !early)
			continue;
		unsigned int otf = OPEN_TREE_CLONE | O_CLOEXEC;
		if (m->h.flags & MS_REC)
			otf |= AT_RECURSIVE;
		m->tree = (int)syscall(SYS_open_tree, AT_FDCWD, m->src, otf);
		if (m->tree < 0 && early && errno == EPERM)
			continue;
		if (m->tree < 0)
			die(errno, "mounts[%d]: bind %s on %s", i, m->src, m->dst);
		if (early)
			continue;
		int nsfd;
		if (*m->id_userns) {
			nsfd = open(m->id_userns, O_RDONLY | O_CLOEXEC);
			if (nsfd < 0)
				die(errno, "mounts[%d]: idmap: open %s", i, m->id_userns);
		} else {
			nsfd = make_userns(i, m->id_uid, m->id_gid);
		}
		struct mount_attr_s a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)nsfd};
		if (syscall(SYS_mount_setattr, m->tree, "", AT_EMPTY_PATH | (m->idmap_rec ? AT_RECURSIVE : 0), &a, sizeof a) < 0)
			die(errno, "mounts[%d]: idmap %s (the filesystem or kernel may not support idmapped mounts)", i, m->src);
		close(nsfd);
	}
}

/* Close every fd in [lo, hi]: close_range, or where the kernel lacks it
 * (ENOSYS, < 5.9) each open fd listed in /proc/self/fd. A failure is fatal:
 * an fd left open would cross into the container. */
static void close_fds(unsigned int lo, unsigned int hi)
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
			struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *e = (void *)(buf + off);
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

static int stage_init(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	syncfd = atoi(argv[2]);
	int planfd = atoi(argv[3]);
	struct stat st;
	if (fstat(planfd, &st) < 0)
		die(errno, "launch plan: stat");
	uint8_t *plan = malloc((size_t)st.st_size + 1);
	if (!plan)
		die(ENOMEM, "launch plan");
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(planfd, plan + got, (size_t)st.st_size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die(errno, "launch plan: read");
		got += (size_t)n;
	}
	close(planfd);
	parse_plan(plan, got);
	debugf("stage started");
	set_affinity(0);

	/* Nothing but stdio, the preserved fds and the sync socket crosses into
	 * the container (CVE-2024-21626): close the rest now. */
	unsigned int first = 3 + P.preserve;
	if ((unsigned)syncfd < first)
		die(EINVAL, "sync fd %d collides with preserved fds", syncfd);
	if ((unsigned)syncfd > first)
		close_fds(first, (unsigned)syncfd - 1);
	close_fds((unsigned)syncfd + 1, ~0U);

	int fifofd = -1;
	if (P.fifo) {
		fifofd = open(P.fifo, O_PATH | O_CLOEXEC);
		if (fifofd < 0)
			die(errno, "open exec fifo %s", P.fifo);
	}
	if (P.has_oom) {
		char b[32];
		int n = snprintf(b, sizeof b, "%d", P.oom);
		if (write_file("/proc/self/oom_score_adj", b, (size_t)n) < 0)
			die(errno, "write oom_score_adj %d", P.oom);
	}
	for (int i = 0; i < P.ncgroups; i++) {
		char b[32];
		int n = snprintf(b, sizeof b, "%d", getpid());
		if (write_file(P.cgroup_procs[i], b, (size_t)n) < 0)
			die(errno, "join cgroup %s", P.cgroup_procs[i]);
	}
	debugf("cgroups joined");
	connect_console(); /* a host path: before joining a mount namespace */
	join_namespaces();
	if (P.ns_new & CLONE_NEWTIME) {
		if (unshare(CLONE_NEWTIME) < 0)
			die(errno, "unshare time namespace");
		if (P.timens && *P.timens && write_file("/proc/self/timens_offsets", P.timens, strlen(P.timens)) < 0)
			die(errno, "write timens_offsets");
	}
	prepare_idmapped();
	int pp[2];
	if (pipe2(pp, O_CLOEXEC) < 0)
		die(errno, "pipe");
	uint32_t cflags = P.ns_new & ~(uint32_t)CLONE_NEWTIME;
	pid_t child = (pid_t)syscall(SYS_clone, (unsigned long)cflags | SIGCHLD, 0, 0, 0, 0);
	if (child < 0)
		die(errno, "clone new namespaces");
	if (child > 0)
		debugf("namespaces created");
	if (child == 0) {
		close(pp[1]);
		container_init(pp[0], fifofd);
		_exit(1);
	}
	close(pp[0]);
	if (P.ns_new & CLONE_NEWUSER) {
		char path[64];
		if (P.uid_map) {
			snprintf(path, sizeof path, "/proc/%d/uid_map", child);
			if (write_file(path, P.uid_map, strlen(P.uid_map)) < 0) {
				int e = errno;
				kill(child, SIGKILL);
				die(e, "write uid_map \"%s\"", P.uid_map);
			}
		}
		if (P.gid_map) {
			snprintf(path, sizeof path, "/proc/%d/gid_map", child);
			if (write_file(path, P.gid_map, strlen(P.gid_map)) < 0) {
				int e = errno;
				kill(child, SIGKILL);
				die(e, "write gid_map \"%s\"", P.gid_map);
			}
		}
	}
	uint32_t cpid = (uint32_t)child;
	send_msg(M_PID, 0, (const char *)&cpid, sizeof cpid);
	if (write(pp[1], "1", 1) != 1) {
		kill(child, SIGKILL);
		die(errno, "release container init");
	}
	_exit(0);
}

static void set_affinity(int when)
{
	if (!P.aff[when])
		return;
	if (syscall(SYS_sched_setaffinity, 0, P.aff_len[when], P.aff[when]) < 0)
		die(errno, "process.execCPUAffinity.%s: sched_setaffinity", when ? "final" : "initial");
}

/* ioPriority and scheduler: while still privileged */
static void set_priorities(void)
{
	if (P.has_ioprio && syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (int)P.ioprio) < 0)
		die(errno, "process.ioPriority: ioprio_set");
	if (P.has_sched && syscall(SYS_sched_setattr, 0, &P.sched, 0) < 0)
		die(errno, "process.scheduler: sched_setattr (policy %u)", P.sched.policy);
}

/* The LSM label the process gets at execve. */
static void set_lsm_exec(void)
{
	if (!P.lsm)
		return;
	char path[64];
	snprintf(path, sizeof path, "/proc/thread-self/attr/%s/exec", P.lsm);
	if (write_file(path, P.lsm_value, strlen(P.lsm_value)) < 0 &&
	    write_file("/proc/thread-self/attr/exec", P.lsm_value, strlen(P.lsm_value)) < 0)
		die(errno, "set the %s label for exec (%s)", P.lsm, P.lsm_value);
}

/* Load the compiled filter. Without no_new_privs this needs CAP_SYS_ADMIN,
 * so it happens before the identity switch; with it, at the last moment.
 * A filter with a listener sends the listener fd to the runtime, which hands
 * it to the listener socket with the container state. */
static void load_seccomp(void)
{
	if (!P.seccomp_len)
		return;
	struct {
		unsigned short len;
		const void *filter;
	} prog = {(unsigned short)(P.seccomp_len / 8), P.seccomp};
	long fd = syscall(SYS_seccomp, 1 /* SET_MODE_FILTER */, P.seccomp_flags, &prog);
	if (fd < 0)
		die(errno, "load seccomp filter");
	if (P.seccomp_notify) {
		struct tsrun_msg_hdr h = {.type = M_SECCOMP};
		if (tsrun_send_fd(syncfd, (int)fd, &h, sizeof h) < 0)
			die(errno, "seccomp: send the listener fd");
		close((int)fd);
	}
	P.seccomp_len = 0;
}

/* process.cwd. FIRST: as the runtime; EACCES/EPERM there returns 1 to try
 * again after the identity switch (the container user's own volume). Then
 * CVE-2024-21626: the cwd must be inside the container's root. */
static int enter_cwd(int first)
{
	if (!P.cwd)
		return 0;
	if (chdir(P.cwd) < 0) {
		if (first && (errno == EACCES || errno == EPERM))
			return 1;
		die(errno, "chdir to cwd (\"%s\") set in config.json", P.cwd);
	}
	char buf[PATH_MAX];
	if (!getcwd(buf, sizeof buf))
		die(errno, "cwd %s is not inside the container", P.cwd);
	return 0;
}

/* runc's fixStdioPermissions: stdio made outside the container (the pty
 * among them) belongs to the process's uid; the gid (tty) stays. */
static void fix_stdio_owner(void)
{
	if (!P.has_user)
		return;
	struct stat null, st;
	if (stat("/dev/null", &null) < 0)
		null.st_rdev = makedev(1, 3);
	for (int fd = 0; fd < 3; fd++) {
		if (fstat(fd, &st) < 0 || st.st_uid == P.uid || (S_ISCHR(st.st_mode) && st.st_rdev == null.st_rdev))
			continue;
		/* EINVAL/EPERM: an owner or gid not mapped in the user namespace */
		if (fchown(fd, P.uid, st.st_gid) < 0 && errno != EINVAL && errno != EPERM)
			die(errno, "chown stdio fd %d to uid %u", fd, P.uid);
	}
}

/* The exec fifo (an O_PATH fd) reopened for writing through the procfs we
 * started with: the container's root may have no /proc at all. Verified. */
static int reopen_fifo(int procfd, int fifofd)
{
	char rel[32];
	struct statfs sf;
	if (procfd < 0 || fstatfs(procfd, &sf) < 0 || sf.f_type != 0x9fa0 /* PROC_SUPER_MAGIC */)
		die(EXDEV, "open exec fifo: no procfs to reopen it through");
	snprintf(rel, sizeof rel, "self/fd/%d", fifofd);
	int w;
	do
		w = openat(procfd, rel, O_WRONLY | O_CLOEXEC);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		die(errno, "open exec fifo");
	return w;
}

static void container_init(int waitfd, int fifofd)
{
	char c;
	/* before the root changes: see reopen_fifo */
	int procfd = fifofd >= 0 ? open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	ssize_t n;
	do
		n = read(waitfd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(1);
	close(waitfd);
	if (P.ns_new & CLONE_NEWUSER) {
		if (setresgid(0, 0, 0) < 0)
			die(errno, "become root (gid 0) in the user namespace");
		if (setresuid(0, 0, 0) < 0)
			die(errno, "become root (uid 0) in the user namespace");
	}
	umask(0);
	if (P.ns_new & CLONE_NEWNS)
		setup_rootfs();
	if (P.sync_hooks) {
		struct tsrun_msg_hdr h;
		char buf[64];
		send_msg(M_HOOKS, 0, NULL, 0);
		if (recv_msg(&h, buf, sizeof buf) < 0 || h.type != M_HOOKS_DONE)
			_exit(1);
	}
	if (P.ns_new & CLONE_NEWNS) {
		pivot();
		if (P.terminal)
			setup_terminal(P.term_flags & TT_CONSOLE);
		write_sysctls();
		mask_and_readonly();
		remount_deferred_ro();
		if (P.root_readonly) {
			struct statvfs sv;
			unsigned long keep = 0;
			if (statvfs("/", &sv) == 0)
				keep = statvfs_to_ms(sv.f_flag);
			if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL) < 0)
				die(errno, "remount / read-only");
		}
		/* linux.rootfsPropagation is the container root's, which only now is /;
		 * last, as an unbindable tree takes no more binds (masks). Only when
		 * given (runc too): the default would undo the mounts' own options */
		if (P.has_propagation && mount(NULL, "/", NULL, P.propagation, NULL) < 0)
			die(errno, "linux.rootfsPropagation: set propagation of the container's /");
	} else {
		if (P.terminal)
			setup_terminal(0);
		write_sysctls();
		/* the mount namespace inherited or joined: no mounts of ours (the
		 * runtime refused them), the root by chroot (exec: the init's root) */
		if (strcmp(P.rootfs, "/") != 0 && (chroot(P.rootfs) < 0 || chdir("/") < 0))
			die(errno, "chroot %s (no new mount namespace)", P.rootfs);
	}
	debugf("rootfs done");
	if (P.has_hostname && sethostname(P.hostname, strlen(P.hostname)) < 0)
		die(errno, "sethostname %s", P.hostname);
	if (P.has_domainname && setdomainname(P.domainname, strlen(P.domainname)) < 0)
		die(errno, "setdomainname %s", P.domainname);
	if (P.new_keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, P.keyring) < 0 &&
	    errno != ENOSYS && errno != EACCES && errno != EPERM)
		die(errno, "join session keyring %s", P.keyring);
	for (int i = 0; i < P.nrl; i++) {
		struct rlimit r = {.rlim_cur = P.rl[i].soft, .rlim_max = P.rl[i].hard};
		if (setrlimit((int)P.rl[i].res, &r) < 0)
			die(errno, "setrlimit %u (soft %llu, hard %llu)", P.rl[i].res,
			    (unsigned long long)P.rl[i].soft, (unsigned long long)P.rl[i].hard);
	}
	set_priorities();
	/* as root first: a cwd the container user cannot search (runc's
	 * finalizeNamespace); checked while getcwd cannot be filtered yet */
	int cwd_later = enter_cwd(1);
	/* everything a profile may deny happens before the filter */
	if (P.has_personality && personality(P.personality) < 0)
		die(errno, "linux.personality: personality(0x%x)", P.personality);
	set_affinity(1);
	if (!P.nnp)
		load_seccomp();
	fix_stdio_owner();
	set_identity();
	umask(P.umask_v >= 0 ? (mode_t)P.umask_v : 022);
	if (cwd_later)
		enter_cwd(0);
	if (P.nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die(errno, "set no_new_privs");
	if (P.nnp && P.seccomp_notify)
		load_seccomp(); /* the runtime is still listening */
	resolve_executable();
	debugf("ready");

	send_msg(M_READY, 0, NULL, 0);
	struct tsrun_msg_hdr h;
	static char state[TSRUN_MSG_MAX + 1];
	if (recv_msg(&h, state, sizeof state) < 0 || h.type != M_GO)
		_exit(1); /* the runtime went away: nothing to start */
	close(syncfd);
	syncfd = -1;

	/* start's open of the fifo lets us through; the byte we write tells it
	 * the process is starting, after the startContainer hooks passed (a hook's
	 * failure is start's error, spec 1.3) */
	int w = -1;
	if (fifofd >= 0) {
		w = reopen_fifo(procfd, fifofd);
		close(fifofd);
		close(procfd);
	}
	set_lsm_exec();
	if (P.nnp && !P.seccomp_notify)
		load_seccomp();
	/* under the container's filter, as runc runs them */
	start_result_fd = w;
	run_start_hooks(state, h.len);
	start_result_fd = -1;
	if (w >= 0) {
		if (write(w, "0", 1) != 1)
			die(errno, "write exec fifo");
		close(w);
	}
	reset_signals();
	execve(exec_path, P.argv, P.envp);
	die(errno, "exec %s", exec_path);
}

/* Hooks in the runtime namespace: die with the runtime (a kill -9 of tsrun
 * must not leave a hook running), then become the hook. */
static int stage_hook(int argc, char **argv)
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

/* createContainer hooks: nsexec PID CWD PATH ARGS...: PATH resolved here,
 * run in the namespaces of PID with CWD (the rootfs: joining a mount
 * namespace leaves the cwd at its root, which is still the host's). */
static int stage_nsexec(int argc, char **argv)
{
	static const char *kinds[] = {"user", "ipc", "uts", "net", "pid", "cgroup", "mnt", "time"};
	int fds[8];
	if (argc < 5)
		return 2;
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	int pid = atoi(argv[2]);
	const char *cwd = argv[3];
	argv++; /* from here on as before: argv[3] the hook's path */
	int exe = open(argv[3], O_RDONLY);
	if (exe < 0) {
		fprintf(stderr, "tsrun: hook %s: %s\n", argv[3], strerror(errno));
		return 127;
	}
	for (int i = 0; i < 8; i++) {
		char p[64], s[64];
		struct stat a, b;
		snprintf(p, sizeof p, "/proc/%d/ns/%s", pid, kinds[i]);
		snprintf(s, sizeof s, "/proc/self/ns/%s", kinds[i]);
		fds[i] = -1;
		if (stat(p, &a) < 0 || stat(s, &b) < 0 || (a.st_ino == b.st_ino && a.st_dev == b.st_dev))
			continue;
		fds[i] = open(p, O_RDONLY | O_CLOEXEC);
	}
	for (int i = 0; i < 8; i++)
		if (fds[i] >= 0 && setns(fds[i], 0) < 0) {
			fprintf(stderr, "tsrun: hook %s: join %s namespace of %d: %s\n", argv[3], kinds[i], pid,
				strerror(errno));
			return 126;
		}
	if (*cwd && chdir(cwd) < 0) {
		fprintf(stderr, "tsrun: hook %s: chdir %s: %s\n", argv[3], cwd, strerror(errno));
		return 126;
	}
	pid_t c = fork();
	if (c < 0)
		return 126;
	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		extern char **environ;
		syscall(SYS_execveat, exe, "", argv + 4, environ, AT_EMPTY_PATH);
		fprintf(stderr, "tsrun: hook %s: exec: %s\n", argv[3], strerror(errno));
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

int main(int argc, char **argv)
{
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return stage_init(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "nsexec") == 0)
		return stage_nsexec(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "hook") == 0)
		return stage_hook(argc, argv);
	fprintf(stderr, "tsrun-stage: internal program of tsrun, not to be run by hand\n");
	return 2;
}
