/* tsrun ABI: the launch plan encoding and the sync protocol shared by the
 * TypeScript side (lib/protocol) and the native stage. Keep both in step and
 * bump TSRUN_ABI_VERSION on any change. */
#ifndef TSRUN_H
#define TSRUN_H

#include <stdint.h>

#define TSRUN_ABI_VERSION 12
#define TSRUN_PLAN_MAGIC 0x50525354u /* "TSRP" little endian */

/* Plan: header {u32 magic, u32 abi} then records {u16 tag, u16 pad, u32 len, payload}.
 * Strings are NUL terminated inside their payload. Integers are little endian. */
enum tsrun_tag {
	T_ROOTFS = 1,          /* str: absolute host path of the root filesystem */
	T_ROOT_READONLY = 2,   /* empty */
	T_ROOT_PROPAGATION = 3,/* u32 mount flags for "/" (MS_SLAVE|MS_REC default) */
	T_NO_PIVOT = 4,        /* empty */
	T_NS_NEW = 5,          /* u32 CLONE_NEW* flags to create */
	T_NS_JOIN = 6,         /* u32 CLONE_NEW* type, str path */
	T_UID_MAP = 7,         /* str: uid_map contents */
	T_GID_MAP = 8,         /* str: gid_map contents */
	T_TIMENS_OFFSETS = 9,  /* str: timens_offsets contents */
	T_CGROUP_PROCS = 10,   /* str: cgroup.procs file to join */
	T_OOM_SCORE_ADJ = 11,  /* i32 */
	T_HOSTNAME = 12,       /* str */
	T_DOMAINNAME = 13,     /* str */
	T_SYSCTL = 14,         /* str key (with '/'), str value */
	T_MOUNT = 15,          /* struct tsrun_mount_hdr, str source, str dest, str fstype, str data */
	T_DEVICE = 16,         /* struct tsrun_device_hdr, str path (in container) */
	T_SYMLINK = 17,        /* str target, str linkpath (in container) */
	T_MASKED = 18,         /* str path */
	T_READONLY_PATH = 19,  /* str path */
	T_RLIMIT = 20,         /* u32 resource, u32 pad, u64 soft, u64 hard */
	T_USER = 21,           /* u32 uid, u32 gid, i32 umask (-1: 022) */
	T_GROUPS = 22,         /* u32 count, u32 gids[] */
	T_CAPS = 23,           /* u64 bounding, effective, permitted, inheritable, ambient */
	T_NO_NEW_PRIVS = 24,   /* empty */
	T_CWD = 25,            /* str */
	T_ARG = 26,            /* str (repeated, in order) */
	T_ENV = 27,            /* str "K=V" (repeated) */
	T_FIFO = 28,           /* str: host path of exec.fifo */
	T_SYNC_HOOKS = 29,     /* empty: stop before pivot_root for prestart/createRuntime/createContainer */
	T_START_HOOK = 30,     /* u32 timeout_s, u32 nargs, u32 nenv, str path, args..., env... */
	T_NEW_KEYRING = 31,    /* str: keyring name */
	T_DEV_SETUP = 32,      /* empty: /dev is a tmpfs of ours, make default devices */
	T_USERNS_DEVICES = 33, /* empty: bind devices from the host instead of mknod */
	T_SECCOMP = 34,        /* u32 SECCOMP_FILTER_FLAG_*, u32 notify (listener fd to the runtime), sock_filter[] */
	T_PRESERVE_FDS = 35,   /* u32 n */
	/* 36: retired (T_MKDIR, never decoded) */
	T_DEBUG = 37,          /* empty: send timing/debug messages */
	T_MOUNT_IDMAP = 38,    /* for the preceding T_MOUNT (a bind): u32 recursive, str uid_map,
	                          str gid_map, str userns path ("" = a new userns with these maps) */
	T_TERMINAL = 39,       /* u32 flags (TT_*), u32 rows, u32 cols, str console socket path
	                          ("" = send the pty master to the runtime as M_PTY) */
	T_PERSONALITY = 40,    /* u32 persona for personality(2), set before execve */
	T_IOPRIO = 41,         /* u32 ioprio_set value ((class << 13) | level) */
	T_SCHED = 42,          /* u32 policy, u32 priority, i32 nice, u32 pad, u64 flags, runtime, deadline, period */
	T_AFFINITY = 43,       /* u32 when (0 = at start, 1 = before execve), cpu mask bytes */
	T_LSM_EXEC = 44,       /* str lsm ("apparmor", "selinux"), str value for /proc/self/attr/.../exec */
	T_MEMPOLICY = 45,      /* u32 mode | flags, u32 maxnode (bits), nodemask as u64 words */
	T_SETGROUPS_DENY = 46, /* empty: write "deny" to setgroups before gid_map (an unprivileged runtime) */
	T_IDMAP_HELPERS = 47,  /* str newuidmap, str newgidmap: the maps written by these setuid helpers */
};

#define TT_CONSOLE 0x1     /* bind the pty onto /dev/console (create/run, not exec) */

/* Mount kinds / extra flags in tsrun_mount_hdr.extra */
#define TM_BIND 0x1        /* a bind mount (source is a host path) */
#define TM_FILE 0x2        /* destination is a file, not a directory */
#define TM_REMOUNT_RO 0x4  /* a bind needing a remount for its flags */
#define TM_DEV 0x8         /* a tmpfs on /dev: default devices go here */
#define TM_PROCFS 0x10     /* proc: destination must be a real directory */
#define TM_SYSFS 0x20      /* sysfs: destination must be a real directory */
#define TM_CGROUP 0x40     /* cgroup: bind of the container's cgroup */
#define TM_DEFER_RO 0x80   /* mounted writable, made read-only once the rootfs is done */
#define TM_COPYUP 0x100    /* tmpfs: the directory's contents copied up into it (tmpcopyup) */

struct tsrun_mount_hdr {
	uint32_t flags;       /* MS_* for mount(2) */
	uint32_t pflags;      /* propagation MS_* to apply afterwards (0: none) */
	uint32_t attr_set;    /* MOUNT_ATTR_* recursive (mount_setattr) */
	uint32_t attr_clr;
	uint32_t extra;       /* TM_* */
};

struct tsrun_device_hdr {
	uint32_t type;        /* 'c', 'b', 'p' (fifo), 'u' = 'c' */
	uint32_t major;
	uint32_t minor;
	uint32_t mode;        /* permission bits */
	uint32_t uid;
	uint32_t gid;
};

/* Sync messages over SOCK_SEQPACKET: header + payload (<= TSRUN_MSG_MAX). */
#define TSRUN_MSG_MAX 8192
enum tsrun_msg {
	M_PID = 1,        /* stage -> runtime: u32 pid of the container init (host view) */
	M_HOOKS = 2,      /* init -> runtime: run prestart/createRuntime/createContainer now */
	M_HOOKS_DONE = 3, /* runtime -> init */
	M_READY = 4,      /* init -> runtime: waiting for GO, then the exec fifo */
	M_GO = 5,         /* runtime -> init: payload = state JSON for startContainer hooks */
	M_ERROR = 6,      /* any -> runtime: errno in err, payload = context */
	M_DEBUG = 7,      /* any -> runtime: a debug line */
	M_WARN = 8,       /* any -> runtime: a warning line */
	M_PTY = 9,        /* init -> runtime: the pty master, as SCM_RIGHTS */
	M_SECCOMP = 10,   /* init -> runtime: the seccomp listener fd, as SCM_RIGHTS */
};

struct tsrun_msg_hdr {
	uint32_t type;
	int32_t err;
	uint32_t len;
	uint32_t pad;
};

#endif
