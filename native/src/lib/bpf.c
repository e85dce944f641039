/* The cgroup v2 device filter: an eBPF program loaded and made the one
 * filter of a cgroup. */
#include "lib.h"

static int bpf(int cmd, union bpf_attr *a)
{
	return (int)syscall(SYS_bpf, cmd, a, sizeof *a);
}

static uint32_t prog_id(int fd)
{
	struct bpf_prog_info info;
	union bpf_attr a;
	memset(&info, 0, sizeof info);
	memset(&a, 0, sizeof a);
	a.info.bpf_fd = (uint32_t)fd;
	a.info.info_len = sizeof info;
	a.info.info = (uint64_t)(uintptr_t)&info;
	return bpf(BPF_OBJ_GET_INFO_BY_FD, &a) < 0 ? 0 : info.id;
}

/* Every device program on CG but KEEP detached: an update replaces the
 * filter (attached programs all have to allow, so an old one left in place
 * would still deny what the new one grants). The new one is attached first:
 * in between both apply, never neither. */
static int detach_others(int cg, uint32_t keep)
{
	uint32_t ids[64];
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.query.target_fd = (uint32_t)cg;
	a.query.attach_type = BPF_CGROUP_DEVICE;
	a.query.prog_ids = (uint64_t)(uintptr_t)ids;
	a.query.prog_cnt = 64;
	if (bpf(BPF_PROG_QUERY, &a) < 0)
		return -errno;
	for (uint32_t i = 0; i < a.query.prog_cnt && i < 64; i++) {
		if (ids[i] == keep)
			continue;
		union bpf_attr g;
		memset(&g, 0, sizeof g);
		g.prog_id = ids[i];
		int old = bpf(BPF_PROG_GET_FD_BY_ID, &g);
		if (old < 0)
			return -errno;
		union bpf_attr d;
		memset(&d, 0, sizeof d);
		d.target_fd = (uint32_t)cg;
		d.attach_bpf_fd = (uint32_t)old;
		d.attach_type = BPF_CGROUP_DEVICE;
		int r = bpf(BPF_PROG_DETACH, &d);
		int e = errno;
		close(old);
		if (r < 0)
			return -e;
	}
	return 0;
}

/* Load the device program INSNS and make it the one filter of cgroup DIR. */
int tsrun_bpf_device_filter(const char *dir, const uint8_t *insns, int count, char *log, int loglen)
{
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insn_cnt = (uint32_t)count;
	a.insns = (uint64_t)(uintptr_t)insns;
	a.license = (uint64_t)(uintptr_t)"Apache";
	if (log && loglen > 0) {
		log[0] = 0;
		a.log_level = 1;
		a.log_size = (uint32_t)loglen;
		a.log_buf = (uint64_t)(uintptr_t)log;
	}
	int prog = bpf(BPF_PROG_LOAD, &a);
	if (prog < 0)
		return -errno;
	int cg = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (cg < 0) {
		int e = errno;
		close(prog);
		return -e;
	}
	memset(&a, 0, sizeof a);
	a.target_fd = (uint32_t)cg;
	a.attach_bpf_fd = (uint32_t)prog;
	a.attach_type = BPF_CGROUP_DEVICE;
	a.attach_flags = BPF_F_ALLOW_MULTI;
	int r = bpf(BPF_PROG_ATTACH, &a);
	int e = errno;
	if (r == 0) {
		r = detach_others(cg, prog_id(prog));
		e = -r;
	}
	close(cg);
	close(prog);
	return r < 0 ? -e : 0;
}

