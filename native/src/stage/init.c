/* `init SYNCFD PLANFD`: the stage joins the cgroups and namespaces, clones
 * the container init into the new ones and reports its pid; the init builds
 * the root, becomes the process's identity, says READY, waits for GO and
 * then for start's open of the exec fifo, and execs the process. */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

static struct plan plan; /* in .bss: ~250 KB of tables */

/* The exec fifo (an O_PATH fd) reopened for writing through the runtime's
 * procfs: the container's root may have no /proc at all. */
static int reopen_fifo(const struct plan *pl, int fifofd)
{
	char rel[32];
	snprintf(rel, sizeof rel, "self/fd/%d", fifofd);
	int w;
	do
		w = openat(pl->procfd, rel, O_WRONLY | O_CLOEXEC);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		die(errno, "open exec fifo");
	return w;
}

/* the prestart/createRuntime/createContainer hooks run while we wait */
static void sync_hooks(const struct plan *pl)
{
	if (!pl->sync_hooks)
		return;
	struct tsrun_msg_hdr h;
	char buf[64];
	send_msg(M_HOOKS, 0, NULL, 0);
	if (recv_msg(&h, buf, sizeof buf) < 0 || h.type != M_HOOKS_DONE)
		_exit(1);
}

static void build_root(struct plan *pl)
{
	if (pl->ns_new & CLONE_NEWNS)
		setup_rootfs(pl);
	sync_hooks(pl);
	if (pl->ns_new & CLONE_NEWNS) {
		pivot(pl);
		if (pl->terminal)
			setup_terminal(pl, pl->term_flags & TT_CONSOLE);
		write_sysctls(pl);
		mask_and_readonly(pl);
		remount_deferred_ro(pl);
		finish_rootfs(pl);
	} else {
		if (pl->terminal)
			setup_terminal(pl, 0);
		write_sysctls(pl);
		/* the mount namespace inherited or joined: no mounts of ours (the
		 * runtime refused them), the root by chroot (exec: the init's root) */
		if (strcmp(pl->rootfs, "/") != 0 && (chroot(pl->rootfs) < 0 || chdir("/") < 0))
			die(errno, "chroot %s (no new mount namespace)", pl->rootfs);
	}
	debugf("rootfs done");
}

/* everything a profile may deny happens before the filter */
static void become_process(struct plan *pl, int fifofd)
{
	open_lsm_exec(pl);
	/* the runtime's procfs is still needed only to reopen the exec fifo; the
	 * cwd is entered without it where it is not (exec) */
	if (fifofd < 0) {
		close(pl->procfd);
		pl->procfd = -1;
	}
	set_names_and_keyring(pl);
	set_rlimits(pl);
	set_priorities(pl);
	set_memory_policy(pl);
	/* as root first: a cwd the container user cannot search (runc's
	 * finalizeNamespace); checked while getcwd cannot be filtered yet */
	int cwd_later = enter_cwd(pl, 1);
	if (pl->has_personality && personality(pl->personality) < 0)
		die(errno, "linux.personality: personality(0x%x)", pl->personality);
	set_affinity(pl, 1);
	if (!pl->nnp)
		load_seccomp(pl);
	fix_stdio_owner(pl);
	set_identity(pl);
	umask(pl->umask_v >= 0 ? (mode_t)pl->umask_v : 022);
	if (cwd_later)
		enter_cwd(pl, 0);
	if (pl->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die(errno, "set no_new_privs");
	if (pl->nnp && pl->seccomp_notify)
		load_seccomp(pl); /* the runtime is still listening */
	resolve_executable(pl);
}

/* READY, GO (with the state for startContainer hooks), the fifo, execve.
 * start's open of the fifo lets us through; the byte we write tells it the
 * process is starting, after the startContainer hooks passed (a hook's
 * failure is start's error, spec 1.3). */
static void __attribute__((noreturn)) wait_and_exec(struct plan *pl, int fifofd)
{
	static char state[TSRUN_MSG_MAX + 1];
	struct tsrun_msg_hdr h;
	debugf("ready");
	send_msg(M_READY, 0, NULL, 0);
	if (recv_msg(&h, state, sizeof state) < 0 || h.type != M_GO)
		_exit(1); /* the runtime went away: nothing to start */
	chan_close();
	int w = -1;
	if (fifofd >= 0) {
		w = reopen_fifo(pl, fifofd);
		close(fifofd);
		close(pl->procfd);
	}
	set_lsm_exec(pl);
	if (pl->nnp && !pl->seccomp_notify)
		load_seccomp(pl);
	/* under the container's filter, as runc runs them */
	chan_report_to(w);
	run_start_hooks(pl, state, h.len);
	chan_report_to(-1);
	if (w >= 0) {
		if (write(w, "0", 1) != 1)
			die(errno, "write exec fifo");
		close(w);
	}
	reset_signals();
	execve(pl->exec_path, pl->argv, pl->envp);
	die(errno, "exec %s", pl->exec_path);
}

static void __attribute__((noreturn)) container_init(struct plan *pl, int waitfd, int fifofd)
{
	char c;
	ssize_t n;
	do
		n = read(waitfd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(1);
	close(waitfd);
	/* the maps are written: nothing may ptrace or read us until execve (CVE-2016-9962) */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (pl->ns_new & CLONE_NEWUSER) {
		if (setresgid(0, 0, 0) < 0)
			die(errno, "become root (gid 0) in the user namespace");
		if (setresuid(0, 0, 0) < 0)
			die(errno, "become root (uid 0) in the user namespace");
	}
	umask(0);
	build_root(pl);
	become_process(pl, fifofd);
	wait_and_exec(pl, fifofd);
}

/* Nothing but stdio, the preserved fds and the sync socket crosses into
 * the container (CVE-2024-21626): close the rest now. */
static void close_inherited(const struct plan *pl, int syncfd)
{
	unsigned int first = 3 + pl->preserve;
	if ((unsigned)syncfd < first)
		die(EINVAL, "sync fd %d collides with preserved fds", syncfd);
	if ((unsigned)syncfd > first)
		close_fds(first, (unsigned)syncfd - 1);
	close_fds((unsigned)syncfd + 1, ~0U);
}

/* oom_score_adj and the cgroups, while the stage is still the runtime's */
static void join_cgroups(const struct plan *pl)
{
	char b[32];
	if (pl->has_oom) {
		int n = snprintf(b, sizeof b, "%d", pl->oom);
		if (procfs_write(pl->procfd, "self/oom_score_adj", b, (size_t)n) < 0)
			die(errno, "write oom_score_adj %d", pl->oom);
	}
	for (int i = 0; i < pl->ncgroups; i++) {
		int n = snprintf(b, sizeof b, "%d", getpid());
		if (write_file(pl->cgroup_procs[i], b, (size_t)n) < 0)
			die(errno, "join cgroup %s", pl->cgroup_procs[i]);
	}
	debugf("cgroups joined");
}

/* the init in the new namespaces, held on a pipe until its maps are written */
static void clone_init(struct plan *pl, int fifofd)
{
	int pp[2];
	if (pipe2(pp, O_CLOEXEC) < 0)
		die(errno, "pipe");
	uint32_t cflags = pl->ns_new & ~(uint32_t)CLONE_NEWTIME;
	/* an unprivileged runtime can write the maps only of a dumpable child
	 * (a non-dumpable one's /proc files are root's): dumpable until released */
	if (pl->setgroups_deny || pl->newuidmap)
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	pid_t child = (pid_t)syscall(SYS_clone, (unsigned long)cflags | SIGCHLD, 0, 0, 0, 0);
	if (child < 0)
		die(errno, "clone new namespaces");
	if (child == 0) {
		close(pp[1]);
		container_init(pl, pp[0], fifofd);
	}
	debugf("namespaces created");
	close(pp[0]);
	write_id_maps(pl, child);
	uint32_t cpid = (uint32_t)child;
	send_msg(M_PID, 0, (const char *)&cpid, sizeof cpid);
	if (write(pp[1], "1", 1) != 1) {
		kill(child, SIGKILL);
		die(errno, "release container init");
	}
}

int stage_init(int argc, char **argv)
{
	struct plan *pl = &plan;
	if (argc < 4)
		return 2;
	pl->procfd = pl->rootfd = pl->console_sock = pl->lsm_fd = -1;
	int syncfd = atoi(argv[2]);
	chan_init(syncfd, 0);
	plan_read(pl, atoi(argv[3]));
	chan_init(syncfd, pl->debug);
	debugf("stage started");
	set_affinity(pl, 0);
	close_inherited(pl, syncfd);
	/* before any namespace is joined: every procfs write goes through it */
	pl->procfd = procfs_open("stage");
	int fifofd = -1;
	if (pl->fifo) {
		fifofd = open(pl->fifo, O_PATH | O_CLOEXEC);
		if (fifofd < 0)
			die(errno, "open exec fifo %s", pl->fifo);
	}
	join_cgroups(pl);
	connect_console(pl); /* a host path: before joining a mount namespace */
	join_namespaces(pl);
	enter_time_namespace(pl);
	prepare_idmapped(pl);
	clone_init(pl, fifofd);
	_exit(0);
}
