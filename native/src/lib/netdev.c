/* linux.netDevices: a host interface moved into the container's network
 * namespace under its new name (in one RTM_NEWLINK: move and rename are
 * atomic, a name taken there is EEXIST), its permanent global-scope
 * addresses put back on it there, and set up. Runs in a forked child so
 * that no engine thread ever changes network namespace. */
#include "lib.h"

#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#define NL_BUF 32768
#define MAX_ADDRS 64

struct addr {
	struct ifaddrmsg ifa;
	uint8_t local[16];
	int len;
};

struct req {
	struct nlmsghdr nh;
	union {
		struct ifinfomsg ifi;
		struct ifaddrmsg ifa;
	};
	char attrs[512];
};

static void add_attr(struct nlmsghdr *nh, unsigned short type, const void *data, size_t len)
{
	struct rtattr *rta = (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));
	rta->rta_type = type;
	rta->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/* send one request and wait for its ack; 0 or -errno */
static int talk(int sock, struct nlmsghdr *nh)
{
	static uint32_t seq;
	nh->nlmsg_seq = ++seq;
	nh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	if (send(sock, nh, nh->nlmsg_len, 0) < 0)
		return -errno;
	char buf[NL_BUF];
	for (;;) {
		ssize_t n = recv(sock, buf, sizeof buf, 0);
		if (n < 0)
			return -errno;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n))
			if (h->nlmsg_seq == nh->nlmsg_seq && h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	}
}

/* the permanent, global-scope addresses of IFINDEX (what survives the move) */
static int get_addrs(int sock, int ifindex, struct addr *out)
{
	struct req r = {.nh = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)), .nlmsg_type = RTM_GETADDR,
			       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1}};
	if (send(sock, &r, r.nh.nlmsg_len, 0) < 0)
		return -errno;
	int count = 0;
	char buf[NL_BUF];
	for (;;) {
		ssize_t n = recv(sock, buf, sizeof buf, 0);
		if (n < 0)
			return -errno;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return count;
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			struct ifaddrmsg *ifa = NLMSG_DATA(h);
			if ((int)ifa->ifa_index != ifindex || ifa->ifa_scope != RT_SCOPE_UNIVERSE || count == MAX_ADDRS)
				continue;
			uint32_t flags = ifa->ifa_flags;
			struct rtattr *local = NULL, *address = NULL;
			int alen = (int)IFA_PAYLOAD(h);
			for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
				if (a->rta_type == IFA_LOCAL)
					local = a;
				else if (a->rta_type == IFA_ADDRESS)
					address = a;
				else if (a->rta_type == IFA_FLAGS)
					memcpy(&flags, RTA_DATA(a), sizeof flags);
			}
			struct rtattr *use = local ? local : address;
			if (!(flags & IFA_F_PERMANENT) || !use || RTA_PAYLOAD(use) > 16)
				continue;
			out[count].ifa = *ifa;
			out[count].len = (int)RTA_PAYLOAD(use);
			memcpy(out[count].local, RTA_DATA(use), (size_t)out[count].len);
			count++;
		}
	}
}

static int move_link(int sock, int ifindex, int netns, const char *newname)
{
	struct req r = {.nh = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)), .nlmsg_type = RTM_NEWLINK}};
	r.ifi.ifi_family = AF_UNSPEC;
	r.ifi.ifi_index = ifindex;
	uint32_t fd = (uint32_t)netns;
	add_attr(&r.nh, IFLA_NET_NS_FD, &fd, sizeof fd);
	add_attr(&r.nh, IFLA_IFNAME, newname, strlen(newname) + 1);
	return talk(sock, &r.nh);
}

static int add_addr(int sock, int ifindex, const struct addr *a)
{
	struct req r = {.nh = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)), .nlmsg_type = RTM_NEWADDR,
			       .nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL}};
	r.ifa = a->ifa;
	r.ifa.ifa_index = (uint32_t)ifindex;
	add_attr(&r.nh, IFA_LOCAL, a->local, (size_t)a->len);
	add_attr(&r.nh, IFA_ADDRESS, a->local, (size_t)a->len);
	int e = talk(sock, &r.nh);
	return e == -EEXIST ? 0 : e;
}

static int set_up(int sock, int ifindex)
{
	struct req r = {.nh = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)), .nlmsg_type = RTM_NEWLINK}};
	r.ifi.ifi_family = AF_UNSPEC;
	r.ifi.ifi_index = ifindex;
	r.ifi.ifi_flags = IFF_UP;
	r.ifi.ifi_change = IFF_UP;
	return talk(sock, &r.nh);
}

static int nl_socket(void)
{
	return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
}

/* Is NAME taken in NETNS? The kernel moves first and renames after, so a
 * taken name would leave the device moved under its old name: asked first. */
static int name_taken(int netns, const char *name)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0 || setns(netns, CLONE_NEWNET) < 0)
		return -errno;
	int taken = if_nametoindex(name) != 0;
	int e = setns(self, CLONE_NEWNET) < 0 ? -errno : 0;
	close(self);
	return e < 0 ? e : taken;
}

/* the child's work; returns 0 or -errno with WHAT naming the step */
static int netdev_move(const char *name, const char *newname, int netns, const char **what)
{
	struct addr addrs[MAX_ADDRS];
	int sock = nl_socket(), n, e;
	int ifindex = (int)if_nametoindex(name);
	if (ifindex == 0)
		return *what = "find it in the runtime's network namespace", -errno;
	if (!strchr(newname, '%') && (e = name_taken(netns, newname)) != 0)
		return *what = "its name in the container's network namespace", e < 0 ? e : -EEXIST;
	if (sock < 0)
		return *what = "netlink socket", -errno;
	if ((n = get_addrs(sock, ifindex, addrs)) < 0)
		return *what = "read its addresses", n;
	if ((e = move_link(sock, ifindex, netns, newname)) < 0)
		return *what = "move it into the container's network namespace", e;
	close(sock);
	if (setns(netns, CLONE_NEWNET) < 0)
		return *what = "join the container's network namespace", -errno;
	if ((sock = nl_socket()) < 0)
		return *what = "netlink socket in the container", -errno;
	/* a "%d" name is the kernel's pick: found by the index the move keeps
	 * (a new one only if it is taken there, then by nothing: an error) */
	char picked[IF_NAMESIZE];
	int idx = strchr(newname, '%') ? (if_indextoname((unsigned)ifindex, picked) ? ifindex : 0) : (int)if_nametoindex(newname);
	if (idx == 0)
		return *what = "find it in the container", -(errno ? errno : ENODEV);
	for (int i = 0; i < n; i++)
		if ((e = add_addr(sock, idx, &addrs[i])) < 0)
			return *what = "put its address back", e;
	if ((e = set_up(sock, idx)) < 0)
		return *what = "set it up", e;
	return 0;
}

/* Move NAME into the network namespace NETNS_PATH as NEWNAME. 0, or -errno
 * with the failing step in ERR. */
int tsrun_netdev_move(const char *name, const char *newname, const char *netns_path, char *err, int errlen)
{
	int netns = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (netns < 0) {
		snprintf(err, (size_t)errlen, "open %s", netns_path);
		return -errno;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		close(netns);
		return -errno;
	}
	pid_t c = fork();
	if (c == 0) {
		const char *what = "";
		int r = netdev_move(name, newname, netns, &what);
		char line[160];
		int len = snprintf(line, sizeof line, "%d %s", r, what);
		if (write(p[1], line, (size_t)len) < 0) {
		}
		_exit(r < 0 ? 1 : 0);
	}
	close(p[1]);
	close(netns);
	if (c < 0) {
		close(p[0]);
		return -errno;
	}
	char line[160] = {0};
	ssize_t n = read(p[0], line, sizeof line - 1);
	close(p[0]);
	while (waitpid(c, NULL, 0) < 0 && errno == EINTR)
		;
	int r = n > 0 ? atoi(line) : -EIO;
	const char *sp = n > 0 ? strchr(line, ' ') : NULL;
	snprintf(err, (size_t)errlen, "%s", sp ? sp + 1 : "the helper died");
	return r;
}
