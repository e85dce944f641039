/* process.terminal: a pty from the container's own devpts. */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "../../include/fdpass.h"

/* The console socket is a host path: connect before the init enters the
 * container's mount namespace. */
void connect_console(struct plan *pl)
{
	if (!pl->terminal || !*pl->console_path)
		return;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(pl->console_path) >= sizeof a.sun_path)
		die(ENAMETOOLONG, "--console-socket %s", pl->console_path);
	strcpy(a.sun_path, pl->console_path);
	pl->console_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (pl->console_sock < 0)
		die(errno, "--console-socket: socket");
	if (connect(pl->console_sock, (struct sockaddr *)&a, sizeof a) < 0)
		die(errno, "--console-socket: connect %s", pl->console_path);
}

static int open_pty_peer(const struct plan *pl, int *master)
{
	int ptmx = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (ptmx < 0)
		die(errno, "terminal: open /dev/ptmx");
	struct stat st;
	if (fstat(ptmx, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 || minor(st.st_rdev) != 2)
		die(EPERM, "terminal: /dev/ptmx is not the pty multiplexer (char 5:2)");
	int unlock = 0;
	if (ioctl(ptmx, TIOCSPTLCK, &unlock) < 0)
		die(errno, "terminal: unlock the pty");
	int peer = ioctl(ptmx, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (peer < 0)
		die(errno, "terminal: open the pty peer");
	if (pl->rows || pl->cols) {
		struct winsize ws = {.ws_row = (unsigned short)pl->rows, .ws_col = (unsigned short)pl->cols};
		if (ioctl(peer, TIOCSWINSZ, &ws) < 0)
			die(errno, "terminal: set consoleSize");
	}
	*master = ptmx;
	return peer;
}

static void bind_console(int peer)
{
	int r = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r < 0)
		die(errno, "open /");
	int c = mkpath_in_root(r, "/dev/console", 1, 0666, 1);
	if (c < 0)
		die(errno, "terminal: create /dev/console");
	if (mount(fdpath(peer), fdpath(c), NULL, MS_BIND, NULL) < 0)
		die(errno, "terminal: bind the pty onto /dev/console");
	close(c);
	close(r);
}

/* The master goes to the console socket (or the runtime), the peer, opened
 * from the master and never by path, becomes /dev/console (CVE-2025-52565),
 * the controlling terminal and stdio. */
void setup_terminal(struct plan *pl, int make_console)
{
	int ptmx, peer = open_pty_peer(pl, &ptmx);
	if (make_console)
		bind_console(peer);
	if (pl->console_sock >= 0) {
		if (tsrun_send_fd(pl->console_sock, ptmx, "/dev/ptmx", 9) < 0)
			die(errno, "--console-socket: send the pty master");
		close(pl->console_sock);
		pl->console_sock = -1;
	} else {
		struct tsrun_msg_hdr h = {.type = M_PTY};
		if (tsrun_send_fd(chan_fd(), ptmx, &h, sizeof h) < 0)
			die(errno, "terminal: send the pty master");
	}
	close(ptmx);
	if (setsid() < 0)
		die(errno, "terminal: setsid");
	if (ioctl(peer, TIOCSCTTY, 0) < 0)
		die(errno, "terminal: set the controlling terminal");
	for (int fd = 0; fd < 3; fd++)
		if (dup2(peer, fd) < 0)
			die(errno, "terminal: dup the pty to fd %d", fd);
	if (peer > 2)
		close(peer);
}
