/* The config's mounts, each onto a destination resolved inside the rootfs. */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

unsigned long statvfs_to_ms(unsigned long f)
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

/* the destination, made if missing; proc and sysfs only on a real directory */
static int open_destination(const struct plan *pl, int idx, const struct mnt *m)
{
	int is_file = (m->h.extra & TM_FILE) != 0;
	int pseudo = (m->h.extra & (TM_PROCFS | TM_SYSFS)) != 0;
	int fd = mkpath_in_root(pl->rootfd, m->dst, is_file, is_file ? 0644 : 0755, pseudo);
	if (fd < 0) {
		if (errno == ELOOP && pseudo)
			die(ELOOP, "mounts[%d]: %s destination %s is a symlink: filesystem \"%s\" must be mounted on ordinary directory",
			    idx, m->type, m->dst, m->type);
		die(errno, "mounts[%d]: create mount point %s in rootfs", idx, m->dst);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		die(errno, "mounts[%d]: stat %s", idx, m->dst);
	if (pseudo && !S_ISDIR(st.st_mode))
		die(ENOTDIR, "mounts[%d]: %s destination %s is not a directory: filesystem \"%s\" must be mounted on ordinary directory",
		    idx, m->type, m->dst, m->type);
	return fd;
}

/* what a mount(2) cannot set at once: ro of a bind, attributes, propagation */
static void apply_after(const struct plan *pl, int idx, const struct mnt *m)
{
	/* reopened: the new mount now sits on the destination */
	int fd = openat2_in_root(pl->rootfd, m->dst, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
	if (fd < 0)
		die(errno, "mounts[%d]: reopen %s", idx, m->dst);
	const char *target = fdpath(fd);
	if (m->h.extra & TM_REMOUNT_RO) {
		struct statvfs sv;
		unsigned long keep = 0;
		if (fstatvfs(fd, &sv) == 0)
			keep = statvfs_to_ms(sv.f_flag) & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
		unsigned long rf = (m->h.flags & ~(MS_BIND | MS_REC | MS_REMOUNT)) | keep | MS_BIND | MS_REMOUNT;
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

/* tmpcopyup: the directory's contents, reachable through an fd opened before the mount */
static int open_copy_source(int idx, const struct mnt *m, int fd)
{
	if (!(m->h.extra & TM_COPYUP))
		return -1;
	int src = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src < 0)
		die(errno, "mounts[%d]: tmpcopyup: open %s", idx, m->dst);
	return src;
}

static void finish_copy_up(const struct plan *pl, int idx, const struct mnt *m, int src)
{
	if (src < 0)
		return;
	int dst = openat2_in_root(pl->rootfd, m->dst, O_RDONLY | O_DIRECTORY, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
	if (dst < 0)
		die(errno, "mounts[%d]: tmpcopyup: reopen %s", idx, m->dst);
	copy_up(idx, m->dst, src, dst);
	close(dst);
	close(src);
}

void mount_entry(struct plan *pl, int idx, struct mnt *m)
{
	int fd = open_destination(pl, idx, m);
	int copy_src = open_copy_source(idx, m, fd);
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
	finish_copy_up(pl, idx, m, copy_src);
	if ((m->h.extra & TM_REMOUNT_RO) || m->h.pflags || m->h.attr_set || m->h.attr_clr)
		apply_after(pl, idx, m);
}

/* Idmapped binds are cloned from the source and given their idmapping here,
 * before the init exists: mount_setattr(MOUNT_ATTR_IDMAP) needs privilege
 * over the target user namespace, which the stage has and the init (inside
 * the container's user namespace) does not. The init inherits the detached
 * trees and attaches them with move_mount. */
void prepare_idmapped(struct plan *pl)
{
	for (int i = 0; i < pl->nmounts; i++) {
		struct mnt *m = &pl->mounts[i];
		/* a bind into a new user namespace: cloned here, as the runtime, so
		 * that a source the container's root cannot reach still mounts
		 * (runc opens mount sources before entering the user namespace).
		 * EPERM (an unprivileged runtime): by path in the container, as before */
		int early = !m->idmap && (m->h.extra & TM_BIND) && (pl->ns_new & CLONE_NEWUSER);
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
			nsfd = make_userns(pl, i, m->id_uid, m->id_gid);
		}
		struct mount_attr_s a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)nsfd};
		if (syscall(SYS_mount_setattr, m->tree, "", AT_EMPTY_PATH | (m->idmap_rec ? AT_RECURSIVE : 0), &a, sizeof a) < 0)
			die(errno, "mounts[%d]: idmap %s (the filesystem or kernel may not support idmapped mounts)", i, m->src);
		close(nsfd);
	}
}

/* The read-only mounts that had to stay writable while the rootfs was built
 * (a ro /dev: pts, devices, links), now read-only, their other flags kept. */
void remount_deferred_ro(const struct plan *pl)
{
	for (int i = 0; i < pl->nmounts; i++) {
		const struct mnt *m = &pl->mounts[i];
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
