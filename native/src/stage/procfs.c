/* procfs is written only through an fd verified to be the root of a procfs
 * (CVE-2025-52881's class: a /proc shadowed by a tmpfs, a bind over one of
 * its files, or a joined mount namespace whose /proc the container made
 * would otherwise take the write). The runtime's procfs is opened once,
 * before any namespace is joined, and every write below it resolves with
 * no symlink out, no magic link and no mount crossing. */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define PROC_ROOT_INO 1

static int is_procfs(int fd)
{
	struct statfs sf;
	return fstatfs(fd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
}

/* /proc of the caller's mount namespace, checked to be a procfs root */
int procfs_open(const char *what)
{
	int fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0)
		die(errno, "%s: open /proc", what);
	if (!is_procfs(fd) || fstat(fd, &st) < 0 || st.st_ino != PROC_ROOT_INO)
		die(EXDEV, "%s: /proc is not the root of a procfs", what);
	return fd;
}

int procfs_open_file(int procfd, const char *rel, int flags)
{
	int fd = openat2_in_root(procfd, rel, (uint64_t)(flags | O_NOCTTY),
				 RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
	if (fd < 0)
		return -1;
	if (!is_procfs(fd)) {
		close(fd);
		return errno = EXDEV, -1;
	}
	return fd;
}

int procfs_write(int procfd, const char *rel, const char *data, size_t len)
{
	int fd = procfs_open_file(procfd, rel, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n;
	do
		n = write(fd, data, len);
	while (n < 0 && errno == EINTR);
	int e = errno;
	close(fd);
	if (n < 0)
		return errno = e, -1;
	if ((size_t)n != len)
		return errno = EIO, -1;
	return 0;
}

/* sysctls go through the container's own /proc/sys (its namespaces' view),
 * verified to be procfs and walked the same way. Before readonlyPaths,
 * which usually hold /proc/sys. */
void write_sysctls(const struct plan *pl)
{
	if (!pl->nsysctl)
		return;
	int dfd = openat2_in_root(AT_FDCWD, "/proc/sys", O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	if (dfd < 0)
		die(errno, "sysctl: open /proc/sys");
	if (!is_procfs(dfd))
		die(EXDEV, "sysctl: /proc/sys in the container is not procfs");
	for (int i = 0; i < pl->nsysctl; i++) {
		int fd = procfs_open_file(dfd, pl->sysctl_k[i], O_WRONLY);
		if (fd < 0)
			die(errno, "sysctl %s", pl->sysctl_k[i]);
		if (write(fd, pl->sysctl_v[i], strlen(pl->sysctl_v[i])) < 0)
			die(errno, "sysctl %s=%s", pl->sysctl_k[i], pl->sysctl_v[i]);
		close(fd);
	}
	close(dfd);
}
