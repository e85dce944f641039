/* tmpcopyup: a tmpfs mounted over a directory of the rootfs starts with what
 * that directory held. The directory is opened before the mount (its fd
 * still reaches the covered contents) and walked with *at calls and
 * O_NOFOLLOW: nothing is followed, everything stays inside the rootfs. */
#include "stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define COPYUP_MAX_DEPTH 64

static int copy_file(int sdir, int ddir, const char *name, const struct stat *st)
{
	int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return -1;
	int out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st->st_mode & 07777);
	if (out < 0) {
		int e = errno;
		close(in);
		return errno = e, -1;
	}
	char buf[65536];
	ssize_t n;
	int r = 0;
	while ((n = read(in, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(out, buf, (size_t)n) != n) {
			r = -1;
			break;
		}
	}
	int e = errno;
	close(in);
	close(out);
	return errno = e, r;
}

static int copy_entry(int sdir, int ddir, const char *name, int depth);

static int copy_dir_contents(int sdir, int ddir, int depth)
{
	if (depth > COPYUP_MAX_DEPTH)
		return errno = ELOOP, -1;
	int dupfd = dup(sdir);
	DIR *d = dupfd < 0 ? NULL : fdopendir(dupfd);
	if (!d)
		return -1;
	int r = 0;
	for (struct dirent *e; r == 0 && (e = readdir(d));) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		r = copy_entry(sdir, ddir, e->d_name, depth);
	}
	int err = errno;
	closedir(d);
	return errno = err, r;
}

static int copy_entry(int sdir, int ddir, const char *name, int depth)
{
	struct stat st;
	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	int r;
	if (S_ISDIR(st.st_mode)) {
		if (mkdirat(ddir, name, st.st_mode & 07777) < 0)
			return -1;
		int s2 = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int d2 = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		r = s2 < 0 || d2 < 0 ? -1 : copy_dir_contents(s2, d2, depth + 1);
		int e = errno;
		if (s2 >= 0)
			close(s2);
		if (d2 >= 0)
			close(d2);
		errno = e;
	} else if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(sdir, name, target, sizeof target - 1);
		if (n < 0)
			return -1;
		target[n] = 0;
		r = symlinkat(target, ddir, name);
	} else if (S_ISREG(st.st_mode)) {
		r = copy_file(sdir, ddir, name, &st);
	} else {
		r = mknodat(ddir, name, st.st_mode, st.st_rdev);
	}
	if (r < 0)
		return -1;
	/* the owner and mode as they were (mode after chown: chown clears setuid) */
	if (fchownat(ddir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	if (!S_ISLNK(st.st_mode) && fchmodat(ddir, name, st.st_mode & 07777, 0) < 0)
		return -1;
	return 0;
}

/* SRC: the directory as it was, opened before the tmpfs covered it; DST the
 * new tmpfs's root, made to look like SRC (mode and owner too). */
void copy_up(int idx, const char *dst_path, int src, int dst)
{
	struct stat st;
	if (fstat(src, &st) < 0 || copy_dir_contents(src, dst, 0) < 0)
		die(errno, "mounts[%d]: tmpcopyup into %s", idx, dst_path);
	if (fchown(dst, st.st_uid, st.st_gid) < 0 || fchmod(dst, st.st_mode & 07777) < 0)
		die(errno, "mounts[%d]: tmpcopyup: owner and mode of %s", idx, dst_path);
}
