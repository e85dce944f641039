/* Decoding of the launch plan (lib/protocol writes it; tsrun.h is the
 * format). Every read is bounds-checked; a record past a limit or of an
 * unknown tag is an error, never skipped. The decoded strings point into the
 * plan buffer, which lives as long as the process. */
#include "stage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

struct rec {
	const uint8_t *p;
	uint32_t len, off;
};

static const char *str(struct rec *r)
{
	if (r->off >= r->len)
		die(EINVAL, "launch plan: string out of bounds");
	const char *s = (const char *)r->p + r->off;
	const void *nul = memchr(s, 0, r->len - r->off);
	if (!nul)
		die(EINVAL, "launch plan: unterminated string");
	r->off += (uint32_t)((const char *)nul - s) + 1;
	return s;
}

/* N bytes of a fixed-size field, bounds-checked */
static void take(struct rec *r, void *dst, uint32_t n)
{
	if (r->len < n || r->off > r->len - n)
		die(EINVAL, "launch plan: integer out of bounds");
	memcpy(dst, r->p + r->off, n);
	r->off += n;
}

static uint32_t u32(struct rec *r)
{
	uint32_t v;
	take(r, &v, sizeof v);
	return v;
}

static uint64_t u64(struct rec *r)
{
	uint64_t v;
	take(r, &v, sizeof v);
	return v;
}

static void need(int ok, const char *what)
{
	if (!ok)
		die(E2BIG, "launch plan: too many %s", what);
}

static void fixed_header(struct rec *r, void *dst, size_t size, const char *what)
{
	if (r->len < size)
		die(EINVAL, "launch plan: short %s", what);
	memcpy(dst, r->p, size);
	r->off = (uint32_t)size;
}

static void decode_mount(struct plan *pl, struct rec *r)
{
	need(pl->nmounts < MAX_MOUNTS, "mounts");
	struct mnt *m = &pl->mounts[pl->nmounts++];
	fixed_header(r, &m->h, sizeof m->h, "mount");
	m->src = str(r);
	m->dst = str(r);
	m->type = str(r);
	m->data = str(r);
	m->tree = -1;
}

static void decode_idmap(struct plan *pl, struct rec *r)
{
	if (pl->nmounts == 0)
		die(EINVAL, "launch plan: idmap without a mount");
	struct mnt *m = &pl->mounts[pl->nmounts - 1];
	m->idmap = 1;
	m->idmap_rec = (int)u32(r);
	m->id_uid = str(r);
	m->id_gid = str(r);
	m->id_userns = str(r);
}

static void decode_device(struct plan *pl, struct rec *r)
{
	need(pl->ndevs < MAX_DEVICES, "devices");
	struct dev *d = &pl->devs[pl->ndevs++];
	fixed_header(r, &d->h, sizeof d->h, "device");
	d->path = str(r);
}

/* the filesystem: rootfs, mounts, devices, paths */
static int decode_fs(struct plan *pl, uint16_t tag, struct rec *r)
{
	switch (tag) {
	case T_ROOTFS: pl->rootfs = str(r); break;
	case T_ROOT_READONLY: pl->root_readonly = 1; break;
	case T_ROOT_PROPAGATION: pl->propagation = u32(r); pl->has_propagation = 1; break;
	case T_NO_PIVOT: pl->no_pivot = 1; break;
	case T_MOUNT: decode_mount(pl, r); break;
	case T_MOUNT_IDMAP: decode_idmap(pl, r); break;
	case T_DEVICE: decode_device(pl, r); break;
	case T_DEV_SETUP: pl->dev_setup = 1; break;
	case T_USERNS_DEVICES: pl->userns_devices = 1; break;
	case T_SYMLINK:
		need(pl->nlinks < MAX_SYMLINKS, "symlinks");
		pl->link_target[pl->nlinks] = str(r);
		pl->link_path[pl->nlinks++] = str(r);
		break;
	case T_MASKED: need(pl->nmasked < MAX_MASKED, "masked paths"); pl->masked[pl->nmasked++] = str(r); break;
	case T_READONLY_PATH: need(pl->nro < MAX_READONLY, "readonly paths"); pl->ro[pl->nro++] = str(r); break;
	case T_SYSCTL:
		need(pl->nsysctl < MAX_SYSCTLS, "sysctls");
		pl->sysctl_k[pl->nsysctl] = str(r);
		pl->sysctl_v[pl->nsysctl++] = str(r);
		break;
	default: return 0;
	}
	return 1;
}

/* namespaces, cgroups and what the host side of them needs */
static int decode_ns(struct plan *pl, uint16_t tag, struct rec *r)
{
	switch (tag) {
	case T_NS_NEW: pl->ns_new = u32(r); break;
	case T_NS_JOIN:
		need(pl->njoins < MAX_JOINS, "namespaces");
		pl->joins[pl->njoins].type = u32(r);
		pl->joins[pl->njoins].path = str(r);
		pl->joins[pl->njoins].fd = -1;
		pl->njoins++;
		break;
	case T_UID_MAP: pl->uid_map = str(r); break;
	case T_GID_MAP: pl->gid_map = str(r); break;
	case T_SETGROUPS_DENY: pl->setgroups_deny = 1; break;
	case T_IDMAP_HELPERS: pl->newuidmap = str(r); pl->newgidmap = str(r); break;
	case T_TIMENS_OFFSETS: pl->timens = str(r); break;
	case T_CGROUP_PROCS: need(pl->ncgroups < MAX_CGROUPS, "cgroups"); pl->cgroup_procs[pl->ncgroups++] = str(r); break;
	case T_OOM_SCORE_ADJ: pl->has_oom = 1; pl->oom = (int32_t)u32(r); break;
	case T_HOSTNAME: pl->has_hostname = 1; pl->hostname = str(r); break;
	case T_DOMAINNAME: pl->has_domainname = 1; pl->domainname = str(r); break;
	case T_NEW_KEYRING: pl->new_keyring = 1; pl->keyring = str(r); break;
	default: return 0;
	}
	return 1;
}

static void decode_sched(struct plan *pl, struct rec *r)
{
	pl->has_sched = 1;
	pl->sched.size = sizeof pl->sched;
	pl->sched.policy = u32(r);
	pl->sched.priority = u32(r);
	pl->sched.nice = (int32_t)u32(r);
	(void)u32(r);
	pl->sched.flags = u64(r);
	pl->sched.runtime = u64(r);
	pl->sched.deadline = u64(r);
	pl->sched.period = u64(r);
}

static void decode_identity(struct plan *pl, uint16_t tag, struct rec *r)
{
	if (tag == T_USER) {
		pl->has_user = 1;
		pl->uid = u32(r);
		pl->gid = u32(r);
		pl->umask_v = (int32_t)u32(r);
	} else if (tag == T_GROUPS) {
		pl->ngroups = u32(r);
		need(pl->ngroups <= MAX_GROUPS, "additional gids");
		for (uint32_t i = 0; i < pl->ngroups; i++)
			pl->groups[i] = u32(r);
	} else {
		pl->has_caps = 1;
		for (int i = 0; i < NCAPSETS; i++)
			pl->caps[i] = u64(r);
	}
}

/* the process: identity, argv, env, terminal, attributes, filter */
static int decode_process(struct plan *pl, uint16_t tag, struct rec *r)
{
	switch (tag) {
	case T_USER: case T_GROUPS: case T_CAPS: decode_identity(pl, tag, r); break;
	case T_NO_NEW_PRIVS: pl->nnp = 1; break;
	case T_CWD: pl->cwd = str(r); break;
	case T_ARG: need(pl->argc < MAX_ARGS - 1, "args"); pl->argv[pl->argc++] = (char *)str(r); break;
	case T_ENV: need(pl->envc < MAX_ENV - 1, "env"); pl->envp[pl->envc++] = (char *)str(r); break;
	case T_RLIMIT:
		need(pl->nrl < MAX_RLIMITS, "rlimits");
		pl->rl[pl->nrl].res = u32(r);
		(void)u32(r);
		pl->rl[pl->nrl].soft = u64(r);
		pl->rl[pl->nrl].hard = u64(r);
		pl->nrl++;
		break;
	case T_TERMINAL:
		pl->terminal = 1;
		pl->term_flags = u32(r);
		pl->rows = u32(r);
		pl->cols = u32(r);
		pl->console_path = str(r);
		break;
	case T_PERSONALITY: pl->has_personality = 1; pl->personality = u32(r); break;
	case T_IOPRIO: pl->has_ioprio = 1; pl->ioprio = u32(r); break;
	case T_SCHED: decode_sched(pl, r); break;
	case T_AFFINITY: {
		uint32_t when = u32(r);
		if (when > 1)
			die(EINVAL, "launch plan: bad affinity record");
		pl->aff[when] = r->p + r->off;
		pl->aff_len[when] = r->len - r->off;
		break;
	}
	case T_LSM_EXEC: pl->lsm = str(r); pl->lsm_value = str(r); break;
	case T_MEMPOLICY:
		pl->has_mempolicy = 1;
		pl->mempolicy_mode = u32(r);
		pl->mempolicy_maxnode = u32(r);
		pl->mempolicy_mask = r->p + r->off;
		if ((r->len - r->off) * 8 != pl->mempolicy_maxnode || pl->mempolicy_maxnode % 64)
			die(EINVAL, "launch plan: bad memory policy record");
		break;
	case T_SECCOMP:
		pl->seccomp_flags = u32(r);
		pl->seccomp_notify = u32(r);
		pl->seccomp = r->p + r->off;
		pl->seccomp_len = r->len - r->off;
		if (pl->seccomp_len % 8)
			die(EINVAL, "launch plan: bad seccomp program");
		break;
	case T_PRESERVE_FDS: pl->preserve = u32(r); break;
	default: return 0;
	}
	return 1;
}

static void decode_start_hook(struct plan *pl, struct rec *r)
{
	need(pl->nhooks < MAX_HOOKS, "hooks");
	struct hook *h = &pl->hooks[pl->nhooks++];
	h->timeout = u32(r);
	uint32_t na = u32(r), ne = u32(r);
	if (na > MAX_HOOK_ARGS || ne > MAX_HOOK_ARGS)
		die(E2BIG, "launch plan: hook too large");
	h->path = str(r);
	h->argv = calloc(na + 2, sizeof(char *));
	h->envp = calloc(ne + 1, sizeof(char *));
	if (!h->argv || !h->envp)
		die(ENOMEM, "launch plan");
	for (uint32_t i = 0; i < na; i++)
		h->argv[i] = (char *)str(r);
	if (na == 0)
		h->argv[0] = (char *)h->path;
	for (uint32_t i = 0; i < ne; i++)
		h->envp[i] = (char *)str(r);
}

/* the runtime's side of the run: exec fifo, hooks, debug */
static int decode_runtime(struct plan *pl, uint16_t tag, struct rec *r)
{
	switch (tag) {
	case T_FIFO: pl->fifo = str(r); break;
	case T_SYNC_HOOKS: pl->sync_hooks = 1; break;
	case T_START_HOOK: decode_start_hook(pl, r); break;
	case T_DEBUG: pl->debug = 1; break;
	default: return 0;
	}
	return 1;
}

static void decode(struct plan *pl, const uint8_t *buf, size_t size)
{
	uint32_t magic, abi;
	if (size < 8)
		die(EINVAL, "launch plan: too short");
	memcpy(&magic, buf, 4);
	memcpy(&abi, buf + 4, 4);
	if (magic != TSRUN_PLAN_MAGIC || abi != TSRUN_ABI_VERSION)
		die(EINVAL, "launch plan: ABI mismatch (stage %d, plan %u): rebuild tsrun", TSRUN_ABI_VERSION, abi);
	pl->umask_v = -1;
	pl->propagation = MS_SLAVE | MS_REC;
	for (size_t pos = 8; pos < size;) {
		uint16_t tag;
		uint32_t len;
		if (size - pos < 8)
			die(EINVAL, "launch plan: truncated record");
		memcpy(&tag, buf + pos, 2);
		memcpy(&len, buf + pos + 4, 4);
		pos += 8;
		if (len > size - pos)
			die(EINVAL, "launch plan: record %u overruns", tag);
		struct rec r = {.p = buf + pos, .len = len, .off = 0};
		pos += len;
		if (!decode_fs(pl, tag, &r) && !decode_ns(pl, tag, &r) && !decode_process(pl, tag, &r) &&
		    !decode_runtime(pl, tag, &r))
			die(EINVAL, "launch plan: unknown record %u", tag);
	}
	pl->argv[pl->argc] = NULL;
	pl->envp[pl->envc] = NULL;
	if (!pl->rootfs || pl->argc == 0)
		die(EINVAL, "launch plan: no rootfs or args");
}

/* The plan arrives in a memfd; read whole, then decoded in place. */
void plan_read(struct plan *pl, int planfd)
{
	struct stat st;
	if (fstat(planfd, &st) < 0)
		die(errno, "launch plan: stat");
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		die(ENOMEM, "launch plan");
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(planfd, buf + got, (size_t)st.st_size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die(errno, "launch plan: read");
		got += (size_t)n;
	}
	close(planfd);
	decode(pl, buf, got);
}
