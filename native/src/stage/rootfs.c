/* The container's root: the rootfs bound and filled with its mounts,
 * pivoted into (or moved onto / with --no-pivot), then masked, made
 * read-only where asked and given its propagation. */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* mountinfo's octal escapes (\040 for a space) undone in place */
void unescape_mnt(char *s)
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

/* this task's mountinfo, whole, through the verified procfs */
static char *read_mountinfo(const struct plan *pl, const char *what)
{
	int fd = procfs_open_file(pl->procfd, "self/mountinfo", O_RDONLY);
	if (fd < 0)
		die(errno, "%s: open /proc/self/mountinfo", what);
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf)
			die(ENOMEM, "%s: read mountinfo", what);
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(errno, "%s: read mountinfo", what);
		if (n == 0)
			break;
		len += (size_t)n;
		if (cap - len < 4096)
			buf = realloc(buf, cap *= 2);
	}
	close(fd);
	buf[len] = 0;
	return buf;
}

static int under_rootfs(const struct plan *pl, const char *p)
{
	size_t n = strlen(pl->rootfs);
	return strncmp(p, pl->rootfs, n) == 0 && (p[n] == 0 || p[n] == '/');
}

/* the mount point of a full proc or sysfs outside the rootfs on LINE, or NULL */
static char *host_pseudofs_target(const struct plan *pl, char *line)
{
	char *f[5], *sep = strstr(line, " - "), *save;
	if (!sep)
		return NULL;
	*sep = 0;
	char *type = strtok_r(sep + 3, " ", &save);
	int i = 0;
	for (char *t = strtok_r(line, " ", &save); t && i < 5; t = strtok_r(NULL, " ", &save))
		f[i++] = t;
	if (i < 5 || !type || strcmp(f[3], "/") != 0 || (strcmp(type, "proc") != 0 && strcmp(type, "sysfs") != 0))
		return NULL;
	unescape_mnt(f[4]);
	return under_rootfs(pl, f[4]) ? NULL : f[4];
}

/* --no-pivot: the old root stays in the mount namespace under the moved
 * rootfs. The kernel lets a user namespace mount a new procfs or sysfs while
 * a full one is anywhere in the namespace, so unmount (or, if that is
 * refused, cover) every full proc and sysfs outside the rootfs, as runc does. */
static void hide_host_pseudofs(const struct plan *pl)
{
	char *buf = read_mountinfo(pl, "--no-pivot");
	char *targets[256], *save;
	int nt = 0;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *t = host_pseudofs_target(pl, line);
		if (!t)
			continue;
		if (nt == 256)
			die(E2BIG, "--no-pivot: more than 256 proc and sysfs mounts to hide");
		targets[nt++] = t;
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

static void move_root(const struct plan *pl)
{
	hide_host_pseudofs(pl);
	if (chdir(pl->rootfs) < 0)
		die(errno, "chdir %s", pl->rootfs);
	if (mount(pl->rootfs, "/", NULL, MS_MOVE, NULL) < 0)
		die(errno, "move rootfs to / (--no-pivot)");
	if (chroot(".") < 0)
		die(errno, "chroot (--no-pivot)");
	if (chdir("/") < 0)
		die(errno, "chdir /");
}

void pivot(const struct plan *pl)
{
	if (pl->no_pivot) {
		move_root(pl);
		return;
	}
	int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (oldroot < 0)
		die(errno, "open /");
	int newroot = open(pl->rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (newroot < 0)
		die(errno, "open rootfs %s", pl->rootfs);
	if (fchdir(newroot) < 0)
		die(errno, "chdir to rootfs");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die(errno, "pivot_root %s", pl->rootfs);
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

static void mask_paths(const struct plan *pl, int root)
{
	int devnull = -1;
	for (int i = 0; i < pl->nmasked; i++) {
		int fd = openat2_in_root(root, pl->masked[i], O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			die(errno, "maskedPaths: %s", pl->masked[i]);
		}
		struct stat st;
		if (fstat(fd, &st) < 0)
			die(errno, "maskedPaths: stat %s", pl->masked[i]);
		if (S_ISDIR(st.st_mode)) {
			if (mount("tmpfs", fdpath(fd), "tmpfs", MS_RDONLY, "size=0") < 0)
				die(errno, "maskedPaths: mask %s", pl->masked[i]);
		} else {
			if (devnull < 0)
				devnull = open_devnull_verified();
			if (mount(fdpath(devnull), fdpath(fd), NULL, MS_BIND, NULL) < 0)
				die(errno, "maskedPaths: mask %s", pl->masked[i]);
		}
		close(fd);
	}
	if (devnull >= 0)
		close(devnull);
}

static void readonly_paths(const struct plan *pl, int root)
{
	for (int i = 0; i < pl->nro; i++) {
		const char *p = pl->ro[i];
		int fd = openat2_in_root(root, p, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			die(errno, "readonlyPaths: %s", p);
		}
		if (mount(fdpath(fd), fdpath(fd), NULL, MS_BIND | MS_REC, NULL) < 0)
			die(errno, "readonlyPaths: bind %s", p);
		close(fd);
		fd = openat2_in_root(root, p, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
		if (fd < 0)
			die(errno, "readonlyPaths: reopen %s", p);
		struct statvfs sv;
		unsigned long keep = 0;
		if (fstatvfs(fd, &sv) == 0)
			keep = statvfs_to_ms(sv.f_flag) & ~MS_RDONLY;
		if (mount(NULL, fdpath(fd), NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | keep, NULL) < 0)
			die(errno, "readonlyPaths: remount %s read-only", p);
		close(fd);
	}
}

void mask_and_readonly(const struct plan *pl)
{
	int r = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r < 0)
		die(errno, "open /");
	mask_paths(pl, r);
	readonly_paths(pl, r);
	close(r);
}

/* The mount point (into MP) of mount MNT_ID when it is shared: 1, else 0. */
static int shared_mount_point(char *mountinfo, uint64_t mnt_id, char *mp)
{
	char *save;
	for (char *line = strtok_r(mountinfo, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long id;
		int n = 0;
		if (sscanf(line, "%llu %*u %*u:%*u %*s %4095s %*s%n", &id, mp, &n) < 2 || id != mnt_id || !n)
			continue;
		/* the optional fields, up to " - " */
		char *end = strstr(line + n, " - ");
		if (end)
			*end = 0;
		if (!strstr(line + n, "shared:"))
			return 0;
		unescape_mnt(mp);
		return 1;
	}
	return 0;
}

/* The mount that holds the rootfs, made a slave when it is shared: the
 * rootfs bind below would otherwise propagate to the host, and pivot_root
 * refuses a shared parent. Found by the mount id statx reports, matched in
 * mountinfo. */
static void rootfs_parent_slave(const struct plan *pl)
{
	struct statx_s stx = {0};
	if (syscall(SYS_statx, AT_FDCWD, pl->rootfs, 0, STATX_MNT_ID, &stx) < 0)
		die(errno, "statx rootfs %s", pl->rootfs);
	if (!(stx.stx_mask & STATX_MNT_ID))
		return;
	char *info = read_mountinfo(pl, "rootfs propagation"), mp[4096];
	/* a slave, not private (runc): pivot_root refuses a shared parent and our
	 * bind must not reach the host, but host mounts still reach a slave root */
	if (shared_mount_point(info, stx.stx_mnt_id, mp) && mount(NULL, mp, NULL, MS_SLAVE, NULL) < 0)
		die(errno, "make the mount holding the rootfs (%s) a slave", mp);
	free(info);
}

void setup_rootfs(struct plan *pl)
{
	/* an unbindable / could not be bound onto itself: rslave until the
	 * pivot, the configured type after it (runc applies it twice too) */
	unsigned long early = (pl->propagation & MS_UNBINDABLE) ? MS_SLAVE | MS_REC : pl->propagation;
	if (mount(NULL, "/", NULL, early, NULL) < 0)
		die(errno, "set propagation of / in the container mount namespace");
	if ((pl->propagation & MS_SHARED) || !(pl->propagation & MS_REC))
		rootfs_parent_slave(pl);
	if (mount(pl->rootfs, pl->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		die(errno, "bind rootfs %s onto itself", pl->rootfs);
	pl->rootfd = open(pl->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pl->rootfd < 0)
		die(errno, "open rootfs %s", pl->rootfs);
	for (int i = 0; i < pl->nmounts; i++)
		mount_entry(pl, i, &pl->mounts[i]);
	debugf("mounts done");
	if (pl->dev_setup || pl->ndevs || pl->nlinks)
		make_devices(pl);
	debugf("devices done");
}

/* after masking: a read-only root, then linux.rootfsPropagation, which is
 * the container root's and only now is /; last, as an unbindable tree takes
 * no more binds. Only when given (runc too): the default would undo the
 * mounts' own options */
void finish_rootfs(const struct plan *pl)
{
	if (pl->root_readonly) {
		struct statvfs sv;
		unsigned long keep = 0;
		if (statvfs("/", &sv) == 0)
			keep = statvfs_to_ms(sv.f_flag);
		if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL) < 0)
			die(errno, "remount / read-only");
	}
	if (pl->has_propagation && mount(NULL, "/", NULL, pl->propagation, NULL) < 0)
		die(errno, "linux.rootfsPropagation: set propagation of the container's /");
}
