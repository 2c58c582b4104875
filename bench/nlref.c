/*
 * nlref: the libnl floor for kvmnet's link work, kept for Scripts/bench.sh.
 *
 * One process does what `kvmnet up nat --taps N` does to links, with the fewest netlink
 * round trips libnl allows, and undoes it:
 *
 *   nlref [--netns NAME] up N [--group G]
 *     bridge br-in (RTM_NEWLINK, NLM_F_CREATE|NLM_F_EXCL), 192.168.1.254/24 on it, br-in up;
 *     then per tap: open /dev/net/tun, TUNSETIFF (IFF_TAP|IFF_NO_PI, vifK.0), TUNSETPERSIST,
 *     close; one RTM_NEWLINK by name that sets master br-in, IFF_UP and IFLA_GROUP G at once.
 *   nlref [--netns NAME] down N                 one RTM_DELLINK per tap (by name), then br-in
 *   nlref [--netns NAME] down N --group G       one RTM_DELLINK carrying only IFLA_GROUP G
 *                                               (no ifindex, no name: the kernel's
 *                                               rtnl_group_dellink, one batched unregister),
 *                                               then br-in
 *   --bridge-in-group (with up and with down --group): br-in joins group G too (one
 *                                               RTM_NEWLINK) and goes with the taps' group
 *                                               delete, as kvmnet does it: one barrier, not two
 *
 * libnl 3.7 has rtnl_link_set_group() for the change message, but rtnl_link_delete() and
 * rtnl_link_build_delete_request() insist on an ifindex or a name (NLE_MISSING_ATTR), so the
 * group delete is built by hand with nlmsg_alloc_simple + nla_put_u32.
 *
 * Build: gcc -O2 -Wall -o nlref bench/nlref.c $(pkg-config --cflags --libs libnl-route-3.0)
 * Needs root (CAP_NET_ADMIN and /dev/net/tun). Exits 1 naming the failed operation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>

#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/route/link.h>
#include <netlink/route/addr.h>

#define BRIDGE "br-in"
#define ADDRESS "192.168.1.254/24"

/* --bridge-in-group */
static int bridge_in_group;

static void die_nl(const char *what, const char *obj, int err)
{
    fprintf(stderr, "nlref: %s %s: %s (libnl error %d)\n", what, obj, nl_geterror(err), err);
    exit(1);
}

static void die_errno(const char *what, const char *obj)
{
    fprintf(stderr, "nlref: %s %s: %s\n", what, obj, strerror(errno));
    exit(1);
}

static void tap_name(char *buf, size_t len, int k) { snprintf(buf, len, "vif%d.0", k); }

/* ip link set NAME [master MASTER] up [group G]: one RTM_NEWLINK, looked up by name. */
static void set_link(struct nl_sock *sk, const char *name, int master, uint32_t group, int has_group)
{
    struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, 0);
    if (!msg || nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) die_nl("alloc", name, -NLE_NOMEM);
    if (nla_put_string(msg, IFLA_IFNAME, name) < 0) die_nl("build", name, -NLE_NOMEM);
    if (master > 0 && nla_put_u32(msg, IFLA_MASTER, (uint32_t)master) < 0) die_nl("build", name, -NLE_NOMEM);
    if (has_group && nla_put_u32(msg, IFLA_GROUP, group) < 0) die_nl("build", name, -NLE_NOMEM);
    int err = nl_send_sync(sk, msg); /* sends, waits for the ACK, frees msg */
    if (err < 0) die_nl("set link", name, err);
}

static void up(struct nl_sock *sk, int n, uint32_t group)
{
    /* ip link add br-in type bridge */
    struct rtnl_link *br = rtnl_link_alloc();
    if (!br) die_nl("alloc", BRIDGE, -NLE_NOMEM);
    rtnl_link_set_name(br, BRIDGE);
    int err = rtnl_link_set_type(br, "bridge");
    if (err < 0) die_nl("set type bridge", BRIDGE, err);
    if ((err = rtnl_link_add(sk, br, NLM_F_CREATE | NLM_F_EXCL)) < 0) die_nl("add bridge", BRIDGE, err);
    rtnl_link_put(br);
    /* its ifindex, for the address and IFLA_MASTER: one RTM_GETLINK */
    struct rtnl_link *got = NULL;
    if ((err = rtnl_link_get_kernel(sk, 0, BRIDGE, &got)) < 0) die_nl("get link", BRIDGE, err);
    int bridx = rtnl_link_get_ifindex(got);
    rtnl_link_put(got);

    /* ip addr add 192.168.1.254/24 dev br-in */
    struct rtnl_addr *a = rtnl_addr_alloc();
    struct nl_addr *local = NULL;
    if (!a) die_nl("alloc", ADDRESS, -NLE_NOMEM);
    if ((err = nl_addr_parse(ADDRESS, AF_INET, &local)) < 0) die_nl("parse", ADDRESS, err);
    rtnl_addr_set_ifindex(a, bridx);
    if ((err = rtnl_addr_set_local(a, local)) < 0) die_nl("set local", ADDRESS, err);
    nl_addr_put(local);
    if ((err = rtnl_addr_add(sk, a, 0)) < 0) die_nl("add address", ADDRESS, err);
    rtnl_addr_put(a);

    /* ip link set br-in up [group G] */
    set_link(sk, BRIDGE, 0, group, bridge_in_group);

    for (int k = 1; k <= n; k++) {
        char name[IFNAMSIZ];
        tap_name(name, sizeof name, k);
        /* ip tuntap add vifK.0 mode tap */
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0) die_errno("open /dev/net/tun for", name);
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0) die_errno("TUNSETIFF", name);
        if (ioctl(fd, TUNSETPERSIST, 1) < 0) die_errno("TUNSETPERSIST", name);
        close(fd);
        /* ip link set vifK.0 master br-in up group G */
        set_link(sk, name, bridx, group, 1);
    }
}

/* ip link del NAME */
static void del_by_name(struct nl_sock *sk, const char *name)
{
    struct rtnl_link *l = rtnl_link_alloc();
    if (!l) die_nl("alloc", name, -NLE_NOMEM);
    rtnl_link_set_name(l, name);
    int err = rtnl_link_delete(sk, l);
    if (err < 0) die_nl("delete link", name, err);
    rtnl_link_put(l);
}

/* ip link del group G: RTM_DELLINK with ifi_index 0, no IFLA_IFNAME, IFLA_GROUP G. */
static void del_group(struct nl_sock *sk, uint32_t group)
{
    char what[32];
    snprintf(what, sizeof what, "group %u", group);
    struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_DELLINK, 0);
    if (!msg || nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) die_nl("alloc", what, -NLE_NOMEM);
    if (nla_put_u32(msg, IFLA_GROUP, group) < 0) die_nl("build", what, -NLE_NOMEM);
    int err = nl_send_sync(sk, msg);
    if (err < 0) die_nl("delete links of", what, err);
}

static void down(struct nl_sock *sk, int n, uint32_t group, int by_group)
{
    if (by_group) {
        if (n > 0) del_group(sk, group);
    } else {
        for (int k = 1; k <= n; k++) {
            char name[IFNAMSIZ];
            tap_name(name, sizeof name, k);
            del_by_name(sk, name);
        }
    }
    if (!(by_group && bridge_in_group && n > 0)) del_by_name(sk, BRIDGE);
}

static void usage(void)
{
    fprintf(stderr, "usage: nlref [--netns NAME] up|down N [--group G] [--bridge-in-group]\n");
    exit(64);
}

int main(int argc, char **argv)
{
    const char *netns = NULL, *verb = NULL;
    int n = -1, has_group = 0;
    uint32_t group = 4242;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--netns") && i + 1 < argc) netns = argv[++i];
        else if (!strcmp(argv[i], "--group") && i + 1 < argc) { group = (uint32_t)strtoul(argv[++i], NULL, 10); has_group = 1; }
        else if (!strcmp(argv[i], "--bridge-in-group")) bridge_in_group = 1;
        else if (!verb && (!strcmp(argv[i], "up") || !strcmp(argv[i], "down"))) verb = argv[i];
        else if (verb && n < 0) n = atoi(argv[i]);
        else usage();
    }
    if (!verb || n < 0 || n > 4094 || group == 0) usage();

    if (netns) { /* as ip netns exec, minus the /sys remount nothing here reads */
        char path[256];
        snprintf(path, sizeof path, "/run/netns/%s", netns);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) die_errno("open", path);
        if (setns(fd, CLONE_NEWNET) < 0) die_errno("setns", path);
        close(fd);
    }

    struct nl_sock *sk = nl_socket_alloc();
    if (!sk) die_nl("alloc", "socket", -NLE_NOMEM);
    int err = nl_connect(sk, NETLINK_ROUTE);
    if (err < 0) die_nl("connect", "NETLINK_ROUTE", err);

    if (!strcmp(verb, "up")) up(sk, n, group);
    else down(sk, n, group, has_group);

    nl_socket_free(sk);
    return 0;
}
