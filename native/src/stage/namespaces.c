/* Namespaces: joined by path, the time namespace with its offsets, user
 * namespaces and their id maps (written through the verified procfs). */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* one table: CLONE_NEW* flag and the name of its /proc/<pid>/ns file, in
 * the order they are joined (the user namespace first, the mount one late) */
const struct ns_kind NS_KINDS[NS_COUNT] = {
	{CLONE_NEWUSER, "user"}, {CLONE_NEWIPC, "ipc"},       {CLONE_NEWUTS, "uts"}, {CLONE_NEWNET, "net"},
	{CLONE_NEWPID, "pid"},   {CLONE_NEWCGROUP, "cgroup"}, {CLONE_NEWNS, "mnt"},  {CLONE_NEWTIME, "time"},
};

const char *ns_name(uint32_t type)
{
	for (int i = 0; i < NS_COUNT; i++)
		if (NS_KINDS[i].type == type)
			return NS_KINDS[i].name;
	return "?";
}

void join_namespaces(struct plan *pl)
{
	for (int i = 0; i < pl->njoins; i++) {
		struct join *j = &pl->joins[i];
		j->fd = open(j->path, O_RDONLY | O_CLOEXEC);
		if (j->fd < 0)
			die(errno, "open %s namespace %s", ns_name(j->type), j->path);
	}
	/* the user namespace first: the others may be owned by it */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < pl->njoins; i++) {
			struct join *j = &pl->joins[i];
			int isuser = j->type == CLONE_NEWUSER;
			if (pass == 0 ? !isuser : isuser)
				continue;
			if (setns(j->fd, (int)j->type) < 0)
				die(errno, "join %s namespace %s", ns_name(j->type), j->path);
			close(j->fd);
		}
}

/* a new time namespace (for the children) with its offsets, before any
 * process is in it */
void enter_time_namespace(const struct plan *pl)
{
	if (!(pl->ns_new & CLONE_NEWTIME))
		return;
	if (unshare(CLONE_NEWTIME) < 0)
		die(errno, "unshare time namespace");
	if (pl->timens && *pl->timens &&
	    procfs_write(pl->procfd, "self/timens_offsets", pl->timens, strlen(pl->timens)) < 0)
		die(errno, "write timens_offsets");
}

static int write_map(const struct plan *pl, pid_t pid, const char *file, const char *map)
{
	char rel[64];
	snprintf(rel, sizeof rel, "%d/%s", (int)pid, file);
	return procfs_write(pl->procfd, rel, map, strlen(map));
}

#define MAX_MAP_LINES 340 /* the kernel's limit of uid_map lines */

/* newuidmap/newgidmap PID ID HOSTID SIZE...: the map's numbers as arguments.
 * Their own errors go to the runtime's stderr; the status decides. */
static int run_idmap_helper(const char *helper, pid_t child, const char *map)
{
	static char buf[8192];
	char *argv[3 + 3 * MAX_MAP_LINES + 1], pid[16];
	int argc = 0;
	snprintf(pid, sizeof pid, "%d", (int)child);
	snprintf(buf, sizeof buf, "%s", map);
	argv[argc++] = (char *)helper;
	argv[argc++] = pid;
	char *save;
	for (char *tok = strtok_r(buf, " \n", &save); tok && argc < (int)(sizeof argv / sizeof argv[0]) - 1; tok = strtok_r(NULL, " \n", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	pid_t h = fork();
	if (h < 0)
		return -1;
	if (h == 0) {
		extern char **environ;
		execve(helper, argv, environ);
		_exit(127);
	}
	int st;
	while (waitpid(h, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return errno = EPERM, -1;
	return 0;
}

/* the maps of the container's new user namespace, before its init goes on */
void write_id_maps(const struct plan *pl, pid_t child)
{
	if (!(pl->ns_new & CLONE_NEWUSER))
		return;
	if (pl->newuidmap) {
		if (pl->uid_map && run_idmap_helper(pl->newuidmap, child, pl->uid_map) < 0) {
			kill(child, SIGKILL);
			die(errno, "linux.uidMappings: %s for pid %d failed (are the ids in /etc/subuid for this user?)", pl->newuidmap, (int)child);
		}
		if (pl->gid_map && run_idmap_helper(pl->newgidmap, child, pl->gid_map) < 0) {
			kill(child, SIGKILL);
			die(errno, "linux.gidMappings: %s for pid %d failed (are the ids in /etc/subgid for this user?)", pl->newgidmap, (int)child);
		}
		return;
	}
	if (pl->uid_map && write_map(pl, child, "uid_map", pl->uid_map) < 0) {
		int e = errno;
		kill(child, SIGKILL);
		die(e, "write uid_map \"%s\"", pl->uid_map);
	}
	if (pl->setgroups_deny && write_map(pl, child, "setgroups", "deny") < 0) {
		int e = errno;
		kill(child, SIGKILL);
		die(e, "write setgroups \"deny\"");
	}
	if (pl->gid_map && write_map(pl, child, "gid_map", pl->gid_map) < 0) {
		int e = errno;
		kill(child, SIGKILL);
		die(e, "write gid_map \"%s\"", pl->gid_map);
	}
}

/* A user namespace with the given maps, for an idmapped mount: a child
 * clone()d into it waits on a pipe while we write its maps and open its ns
 * file, then exits. Returns the ns fd. */
int make_userns(const struct plan *pl, int idx, const char *uid_map, const char *gid_map)
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
	int err = 0, nsfd = -1;
	const char *what = "";
	if (*uid_map && write_map(pl, h, "uid_map", uid_map) < 0)
		err = errno, what = "uidMappings";
	if (!err && *gid_map && write_map(pl, h, "gid_map", gid_map) < 0)
		err = errno, what = "gidMappings";
	if (!err) {
		char rel[64];
		snprintf(rel, sizeof rel, "%d/ns/user", (int)h);
		nsfd = openat(pl->procfd, rel, O_RDONLY | O_CLOEXEC);
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
