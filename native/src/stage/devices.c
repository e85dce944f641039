/* linux.devices (and the default devices on a /dev of ours) and the
 * symlinks /dev needs, made inside the rootfs. */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* in a user namespace mknod is refused: a bind of the host's node instead */
static void bind_device(int dfd, const char *name, const struct dev *d)
{
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
}

static void mknod_device(int dfd, const char *name, const struct dev *d)
{
	mode_t t = d->h.type == 'b' ? S_IFBLK : d->h.type == 'p' ? S_IFIFO : S_IFCHR;
	if (mknodat(dfd, name, t | (d->h.mode & 07777), makedev(d->h.major, d->h.minor)) < 0)
		die(errno, "device %s: mknod", d->path);
	if (fchownat(dfd, name, d->h.uid, d->h.gid, AT_SYMLINK_NOFOLLOW) < 0)
		die(errno, "device %s: chown", d->path);
	if (fchmodat(dfd, name, d->h.mode & 07777, 0) < 0)
		die(errno, "device %s: chmod", d->path);
}

void make_devices(const struct plan *pl)
{
	for (int i = 0; i < pl->ndevs; i++) {
		const struct dev *d = &pl->devs[i];
		const char *name;
		int dfd = open_parent_in_root(pl->rootfd, d->path, &name, "device");
		unlinkat(dfd, name, 0);
		if (pl->userns_devices)
			bind_device(dfd, name, d);
		else
			mknod_device(dfd, name, d);
		close(dfd);
	}
	for (int i = 0; i < pl->nlinks; i++) {
		const char *lp = pl->link_path[i];
		const char *name;
		int dfd = open_parent_in_root(pl->rootfd, lp, &name, "symlink");
		if (symlinkat(pl->link_target[i], dfd, name) < 0 && errno != EEXIST)
			die(errno, "symlink %s -> %s", lp, pl->link_target[i]);
		close(dfd);
	}
}

int open_devnull_verified(void)
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
