/* Path resolution inside the rootfs: nothing here follows a symlink out of
 * it, and every path handed to mount(2) is an fd's /proc/self/fd name. */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int openat2_in_root(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
	struct open_how_s how = {.flags = flags | O_CLOEXEC, .mode = 0, .resolve = resolve};
	int fd;
	do
		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
	while (fd < 0 && errno == EAGAIN);
	return fd;
}

/* a few names alive at once: mount(fdpath(a), fdpath(b)) */
const char *fdpath(int fd)
{
	static char buf[4][32];
	static int next;
	char *b = buf[next++ & 3];
	snprintf(b, sizeof buf[0], "/proc/self/fd/%d", fd);
	return b;
}

int write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, data, len);
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return -1;
	}
	if ((size_t)n != len) {
		errno = EIO;
		return -1;
	}
	return 0;
}

#define WALK_MAX_DEPTH 256
#define WALK_MAX_LINKS 40

struct walk {
	int stack[WALK_MAX_DEPTH]; /* an fd for every directory from the root down */
	int depth, links;
	char work[2 * PATH_MAX], tmp[2 * PATH_MAX];
};

/* the missing component NAME made inside the current directory */
static int walk_create(struct walk *w, const char *name, int is_file, mode_t mode)
{
	int dir = w->stack[w->depth], r;
	if (is_file) {
		r = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
		if (r >= 0)
			close(r);
	} else {
		r = mkdirat(dir, name, mode);
	}
	if (r < 0 && errno != EEXIST)
		return -1;
	return openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
}

/* the symlink FD read and spliced in front of REST, as if the rootfs were "/" */
static int walk_follow(struct walk *w, int fd, const char *rest, int no_symlinks)
{
	char link[PATH_MAX];
	ssize_t n = readlinkat(fd, "", link, sizeof link - 1);
	close(fd);
	if (no_symlinks || ++w->links > WALK_MAX_LINKS)
		return errno = ELOOP, -1;
	if (n <= 0)
		return errno = n < 0 ? errno : ENOENT, -1;
	link[n] = 0;
	if (snprintf(w->tmp, sizeof w->tmp, "%s/%s", link, rest) >= (int)sizeof w->tmp)
		return errno = ENAMETOOLONG, -1;
	memcpy(w->work, w->tmp, strlen(w->tmp) + 1);
	if (link[0] == '/')
		while (w->depth > 0)
			close(w->stack[w->depth--]);
	return 0;
}

/* One step: the component C of the walk opened (made if missing). Returns
 * 1 to go on at REST, 2 to restart at work (a symlink), 0 with *out set at
 * the last component, -1/errno. */
static int walk_step(struct walk *w, char *c, const char *rest, int last, int last_is_file, mode_t mode,
		     int no_symlinks, int *out)
{
	int fd = openat(w->stack[w->depth], c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = walk_create(w, c, last && last_is_file, last ? mode : 0755);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return errno = e, -1;
	}
	if (S_ISLNK(st.st_mode))
		return walk_follow(w, fd, rest, no_symlinks) < 0 ? -1 : 2;
	if (last) {
		*out = fd;
		return 0;
	}
	if (!S_ISDIR(st.st_mode) || w->depth + 1 >= WALK_MAX_DEPTH) {
		close(fd);
		return errno = S_ISDIR(st.st_mode) ? ENAMETOOLONG : ENOTDIR, -1;
	}
	w->stack[++w->depth] = fd;
	return 1;
}

/* Resolve PATH inside ROOTFD, creating what is missing: the equivalent of
 * openat2(RESOLVE_IN_ROOT) with mkdir -p. Walks one component at a time with
 * O_NOFOLLOW, holding an fd for every directory on the way, so nothing can be
 * swapped under it; ".." never climbs above the root and a symlink is read and
 * resolved as if the rootfs were "/" (an absolute one restarts at the root).
 * Missing directories (and the last component as an empty file when
 * LAST_IS_FILE) are created inside the rootfs, never through a link to the
 * host (CVE-2024-45310). NO_SYMLINKS refuses any symlink with ELOOP (/proc,
 * /sys destinations: CVE-2019-19921). Returns an O_PATH fd or -1/errno. */
int mkpath_in_root(int rootfd, const char *path, int last_is_file, mode_t mode, int no_symlinks)
{
	static struct walk w; /* single-threaded; 16 KB off the stack */
	int result = -1, err = 0;
	if (strlen(path) >= sizeof w.work)
		return errno = ENAMETOOLONG, -1;
	snprintf(w.work, sizeof w.work, "%s", path);
	w.depth = w.links = 0;
	w.stack[0] = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (w.stack[0] < 0)
		return -1;
	for (char *p = w.work;;) {
		while (*p == '/')
			p++;
		if (!*p) {
			result = openat(w.stack[w.depth], ".", O_PATH | O_CLOEXEC);
			err = result < 0 ? errno : 0;
			break;
		}
		char *c = p, *slash = strchr(p, '/');
		char *rest = slash ? slash + 1 : p + strlen(p);
		if (slash)
			*slash = 0;
		const char *r2 = rest;
		while (*r2 == '/')
			r2++;
		if (strcmp(c, "..") == 0 && w.depth > 0)
			close(w.stack[w.depth--]);
		if (strcmp(c, ".") == 0 || strcmp(c, "..") == 0) {
			p = rest;
			continue;
		}
		int r = walk_step(&w, c, rest, !*r2, last_is_file, mode, no_symlinks, &result);
		if (r < 0)
			err = errno;
		if (r <= 0)
			break;
		p = r == 2 ? w.work : rest;
	}
	while (w.depth >= 0)
		close(w.stack[w.depth--]);
	if (result < 0)
		errno = err ? err : ENOENT;
	return result;
}

/* The directory that will hold PATH (created inside the rootfs if missing),
 * opened for *at() calls; *NAME points at the last component. */
int open_parent_in_root(int rootfd, const char *path, const char **name, const char *what)
{
	const char *slash = strrchr(path, '/');
	char parent[PATH_MAX];
	size_t pl = slash ? (size_t)(slash - path) : 0;
	if (pl >= sizeof parent)
		die(ENAMETOOLONG, "%s %s", what, path);
	memcpy(parent, path, pl);
	parent[pl] = 0;
	int pfd = mkpath_in_root(rootfd, pl ? parent : "/", 0, 0755, 0);
	if (pfd < 0)
		die(errno, "%s %s: create parent directory", what, path);
	int dfd = openat(pfd, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	close(pfd);
	if (dfd < 0)
		die(errno, "%s %s: open parent directory", what, path);
	*name = slash ? slash + 1 : path;
	return dfd;
}
