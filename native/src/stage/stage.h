/* The stage's modules share the decoded launch plan (struct plan) and the
 * sync channel. Each module takes the plan explicitly; the channel (one
 * socket for the life of the process) is the only module state. */
#ifndef TSRUN_STAGE_H
#define TSRUN_STAGE_H

#define _GNU_SOURCE
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sched.h>
#include <sys/types.h>

#include "../../include/tsrun.h"
#include "compat.h"

/* bounds of the plan: a record past one is refused, never dropped */
#define MAX_JOINS 16
#define MAX_CGROUPS 32
#define MAX_SYSCTLS 1024
#define MAX_MOUNTS 1024
#define MAX_DEVICES 1024
#define MAX_SYMLINKS 64
#define MAX_MASKED 1024
#define MAX_READONLY 1024
#define MAX_RLIMITS 64
#define MAX_GROUPS 256
#define MAX_ARGS 4096
#define MAX_ENV 4096
#define MAX_HOOKS 64
#define MAX_HOOK_ARGS 1024
#define NCAPSETS 5 /* bounding, effective, permitted, inheritable, ambient */

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
struct sched_attr_s {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

struct plan {
	/* decoded from the launch plan */
	const char *rootfs;
	int root_readonly, no_pivot, sync_hooks, dev_setup, userns_devices, debug, has_propagation;
	uint32_t propagation;
	uint32_t ns_new;
	struct join joins[MAX_JOINS];
	int njoins;
	const char *uid_map, *gid_map, *timens;
	int setgroups_deny;
	const char *newuidmap, *newgidmap;
	const char *cgroup_procs[MAX_CGROUPS];
	int ncgroups;
	int has_oom;
	int32_t oom;
	const char *hostname, *domainname;
	int has_hostname, has_domainname;
	const char *sysctl_k[MAX_SYSCTLS], *sysctl_v[MAX_SYSCTLS];
	int nsysctl;
	struct mnt mounts[MAX_MOUNTS];
	int nmounts;
	struct dev devs[MAX_DEVICES];
	int ndevs;
	const char *link_target[MAX_SYMLINKS], *link_path[MAX_SYMLINKS];
	int nlinks;
	const char *masked[MAX_MASKED];
	int nmasked;
	const char *ro[MAX_READONLY];
	int nro;
	struct rlim rl[MAX_RLIMITS];
	int nrl;
	int has_user;
	uint32_t uid, gid;
	int32_t umask_v;
	uint32_t ngroups;
	gid_t groups[MAX_GROUPS];
	int has_caps;
	uint64_t caps[NCAPSETS];
	int nnp;
	const char *cwd;
	char *argv[MAX_ARGS];
	int argc;
	char *envp[MAX_ENV];
	int envc;
	const char *fifo;
	struct hook hooks[MAX_HOOKS];
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
	struct sched_attr_s sched;
	const uint8_t *aff[2];
	uint32_t aff_len[2];
	const char *lsm, *lsm_value;
	int has_mempolicy;
	uint32_t mempolicy_mode, mempolicy_maxnode;
	const uint8_t *mempolicy_mask;

	/* what the setup holds on the way */
	int procfd;      /* the runtime's procfs, verified, opened before any namespace is joined */
	int rootfd;      /* the rootfs, once bound onto itself */
	int console_sock;
	int lsm_fd;      /* attr/exec of the LSM, opened before the cwd is entered */
	char exec_path[PATH_MAX];
};

/* channel.c: the sync socket to the runtime */
void chan_init(int fd, int debug);
int chan_fd(void);
void chan_close(void);
void chan_report_to(int fd);
void send_msg(uint32_t type, int err, const char *payload, size_t len);
int recv_msg(struct tsrun_msg_hdr *h, char *payload, size_t cap);
void __attribute__((noreturn, format(printf, 2, 3))) die(int err, const char *fmt, ...);
void __attribute__((format(printf, 1, 2))) debugf(const char *fmt, ...);

/* plan.c */
void plan_read(struct plan *pl, int planfd);

/* path.c: resolution inside the rootfs */
int openat2_in_root(int dirfd, const char *path, uint64_t flags, uint64_t resolve);
int mkpath_in_root(int rootfd, const char *path, int last_is_file, mode_t mode, int no_symlinks);
int open_parent_in_root(int rootfd, const char *path, const char **name, const char *what);
const char *fdpath(int fd);
int write_file(const char *path, const char *data, size_t len);

/* procfs.c: every procfs write through a verified procfs fd */
int procfs_open(const char *what);
int procfs_write(int procfd, const char *rel, const char *data, size_t len);
int procfs_open_file(int procfd, const char *rel, int flags);
void write_sysctls(const struct plan *pl);

/* mounts.c */
unsigned long statvfs_to_ms(unsigned long f);
void mount_entry(struct plan *pl, int idx, struct mnt *m);
void prepare_idmapped(struct plan *pl);
void remount_deferred_ro(const struct plan *pl);

/* copyup.c */
void copy_up(int idx, const char *dst_path, int src, int dst);

/* devices.c */
void make_devices(const struct plan *pl);
int open_devnull_verified(void);

/* rootfs.c */
void setup_rootfs(struct plan *pl);
void pivot(const struct plan *pl);
void mask_and_readonly(const struct plan *pl);
void finish_rootfs(const struct plan *pl);
void unescape_mnt(char *s);

/* namespaces.c */
#define NS_COUNT 8
extern const struct ns_kind {
	uint32_t type;
	const char *name;
} NS_KINDS[NS_COUNT];
const char *ns_name(uint32_t type);
void join_namespaces(struct plan *pl);
int make_userns(const struct plan *pl, int idx, const char *uid_map, const char *gid_map);
void write_id_maps(const struct plan *pl, pid_t child);
void enter_time_namespace(const struct plan *pl);

/* identity.c */
void set_identity(const struct plan *pl);
void fix_stdio_owner(const struct plan *pl);

/* terminal.c */
void connect_console(struct plan *pl);
void setup_terminal(struct plan *pl, int make_console);

/* process.c */
void resolve_executable(struct plan *pl);
void reset_signals(void);
void set_affinity(const struct plan *pl, int when);
void set_priorities(const struct plan *pl);
void set_memory_policy(const struct plan *pl);
void set_rlimits(const struct plan *pl);
void set_names_and_keyring(const struct plan *pl);
void open_lsm_exec(struct plan *pl);
void set_lsm_exec(const struct plan *pl);
void load_seccomp(struct plan *pl);
int enter_cwd(const struct plan *pl, int first);
void close_fds(unsigned int lo, unsigned int hi);

/* hooks.c */
void run_start_hooks(const struct plan *pl, const char *state, size_t slen);
int stage_hook(int argc, char **argv);
int stage_nsexec(int argc, char **argv);

/* init.c */
int stage_init(int argc, char **argv);

#endif
