/* Who the process runs as: bounding set, ids and groups, capabilities. */
#include "stage.h"

#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define CAP_BITS 64

static void drop_bounding(const struct plan *pl)
{
	for (int c = 0; c < CAP_BITS; c++) {
		if (pl->caps[0] & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			die(errno, "drop capability %d from the bounding set", c);
	}
}

static void set_ids(const struct plan *pl)
{
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		die(errno, "keep capabilities");
	if (setgroups(pl->ngroups, pl->groups) < 0 && !(errno == EPERM && pl->ngroups == 0))
		die(errno, "setgroups");
	if (setresgid(pl->gid, pl->gid, pl->gid) < 0)
		die(errno, "setgid %u", pl->gid);
	if (setresuid(pl->uid, pl->uid, pl->uid) < 0)
		die(errno, "setuid %u", pl->uid);
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
}

static void set_caps(const struct plan *pl)
{
	struct cap_header_s h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct cap_data_s d[2];
	for (int i = 0; i < 2; i++) {
		d[i].effective = (uint32_t)(pl->caps[1] >> (32 * i));
		d[i].permitted = (uint32_t)(pl->caps[2] >> (32 * i));
		d[i].inheritable = (uint32_t)(pl->caps[3] >> (32 * i));
	}
	if (syscall(SYS_capset, &h, d) < 0)
		die(errno, "capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		die(errno, "clear ambient capabilities");
	for (int c = 0; c < CAP_BITS; c++)
		/* the kernel raises an ambient cap only if it is permitted and
		 * inheritable; like runc, a config that asks for more is not fatal */
		if ((pl->caps[4] & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			debugf("cannot raise ambient capability %d: %s", c, strerror(errno));
}

void set_identity(const struct plan *pl)
{
	if (pl->has_caps)
		drop_bounding(pl);
	if (pl->has_user)
		set_ids(pl);
	if (pl->has_caps)
		set_caps(pl);
}

/* runc's fixStdioPermissions: stdio made outside the container (the pty
 * among them) belongs to the process's uid; the gid (tty) stays. */
void fix_stdio_owner(const struct plan *pl)
{
	if (!pl->has_user)
		return;
	struct stat null, st;
	if (stat("/dev/null", &null) < 0)
		null.st_rdev = makedev(1, 3);
	for (int fd = 0; fd < 3; fd++) {
		if (fstat(fd, &st) < 0 || st.st_uid == pl->uid || (S_ISCHR(st.st_mode) && st.st_rdev == null.st_rdev))
			continue;
		/* EINVAL/EPERM: an owner or gid not mapped in the user namespace */
		if (fchown(fd, pl->uid, st.st_gid) < 0 && errno != EINVAL && errno != EPERM)
			die(errno, "chown stdio fd %d to uid %u", fd, pl->uid);
	}
}
