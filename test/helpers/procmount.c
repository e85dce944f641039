/* In a new user+mount+pid namespace, try to mount a fresh procfs: prints
 * "mounted" or "denied <errno name>" (the --no-pivot regression test). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int put(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	int r = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return r;
}

int main(int argc, char **argv)
{
	const char *at = argc > 1 ? argv[1] : "/tmp/freshproc";
	char m[64];
	uid_t u = geteuid();
	gid_t g = getegid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) < 0) {
		printf("unshare %s\n", strerror(errno));
		return 1;
	}
	put("/proc/self/setgroups", "deny");
	snprintf(m, sizeof m, "0 %u 1", u);
	if (put("/proc/self/uid_map", m) < 0)
		printf("uid_map %s\n", strerror(errno));
	snprintf(m, sizeof m, "0 %u 1", g);
	if (put("/proc/self/gid_map", m) < 0)
		printf("gid_map %s\n", strerror(errno));
	pid_t c = fork();
	if (c == 0) {
		mkdir(at, 0755);
		if (mount("proc", at, "proc", 0, NULL) == 0) {
			printf("mounted\n");
			umount2(at, MNT_DETACH);
		} else {
			printf("denied %s\n", strerror(errno));
		}
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	return 0;
}
