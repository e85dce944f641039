/* tsrun-stage: the small static program that becomes the container.
 *
 * The runtime spawns it from a sealed memfd copy (so /proc/<pid>/exe of
 * anything the container can reach is never a writable host binary) with the
 * launch plan in a memfd and one end of a SOCK_SEQPACKET socket. It is
 * single-threaded and never returns into the runtime: every path ends in
 * execve or _exit.
 *
 *   tsrun-stage init SYNCFD PLANFD         set up and become the container init
 *   tsrun-stage nsexec PID CWD PATH ARGS   run PATH inside the namespaces of PID
 *                                          (createContainer hooks)
 *   tsrun-stage hook PARENT PATH ARGS      run PATH, dying with PARENT
 */
#include "stage.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

int main(int argc, char **argv)
{
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return stage_init(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "nsexec") == 0)
		return stage_nsexec(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "hook") == 0)
		return stage_hook(argc, argv);
	fprintf(stderr, "tsrun-stage: internal program of tsrun, not to be run by hand\n");
	return 2;
}
