#ifndef KVMNET_SHIM_H
#define KVMNET_SHIM_H
/*
 * What Swift cannot import: TUN/TAP ioctls (function-like macros, union members of struct ifreq),
 * setns/unshare (need _GNU_SOURCE), and a hand-built RTM_NEWLINK for bridges.
 *
 * Kernel UAPI headers (<linux/if.h>, <linux/if_tun.h>, <linux/if_link.h>) stay in the .c files:
 * in a header Swift sees they clash with Glibc's <net/if.h>.
 *
 * Every function is prefixed kvmnet_. Functions returning "-errno" return 0 or a negative errno;
 * kvmnet_nl_* functions return 0 or a negative libnl code (-NLE_*).
 */
#include <stdint.h>

struct nl_sock;

/*
 * Creates a persistent tap NAME owned by uid OWNER in the namespace of the calling thread.
 * Equals `ip tuntap add NAME mode tap user OWNER`.
 * Returns 0 or -errno; -EEXIST when any link of that name exists (asked with IFF_TUN_EXCL: a
 * plain TUNSETIFF on an existing persistent tap would silently attach to it instead of failing).
 * On failure *failed_call names the call that failed ("open /dev/net/tun", "TUNSETIFF", ...), a
 * static string.
 */
int kvmnet_tap_create(const char *name, uint32_t owner, const char **failed_call);

/*
 * Creates a bridge with STP off and forward delay 0, its MAC and MTU set, down, in link group
 * GROUP unless it is negative, with NLM_F_CREATE|NLM_F_EXCL|NLM_F_ACK on SOCK. MAC points at 6 bytes.
 * Equals `ip link add NAME address MAC mtu MTU [group G] type bridge stp_state 0 forward_delay 0`.
 * Returns 0 or a negative libnl code (-NLE_EXIST when any link of that name exists).
 */
int kvmnet_nl_bridge_add(struct nl_sock *sock, const char *name, const uint8_t *mac, uint32_t mtu, int64_t group);

/* One link as kvmnet_nl_link_dump reads it. */
struct kvmnet_link {
    int index;
    char name[16];      /* IFNAMSIZ */
    char kind[16];      /* IFLA_INFO_KIND ("bridge", "tun", ...), "" for none */
    unsigned short arptype;
    int master;         /* 0: none */
    unsigned flags;     /* IFF_* */
    uint32_t mtu;
    uint32_t group;
    uint8_t mac[6];
    int has_mac;
};

/* Every link of the socket's namespace in one RTM_GETLINK dump without statistics
 * (IFLA_EXT_MASK RTEXT_FILTER_SKIP_STATS), parsed for the fields above only: libnl's link cache
 * parses every attribute of every link. Equals `ip link show`. On success *links is a malloc'd
 * array of *count entries the caller frees. Returns 0 or -NLE_*. */
int kvmnet_nl_link_dump(struct nl_sock *sock, struct kvmnet_link **links, int *count);

/* Deletes every link of a group in one RTM_DELLINK. Returns 0 or -NLE_*. */
int kvmnet_nl_group_delete(struct nl_sock *sock, uint32_t group);

/* One RTM_NEWLINK on ifindex: mtu, master (0 = nomaster), group (each < 0: unchanged), up (1 up,
 * 0 down, < 0 unchanged). Returns 0 or -NLE_*. */
int kvmnet_nl_link_set(struct nl_sock *sock, int ifindex, int64_t mtu, int64_t master, int64_t group, int up);

/* setns(fd, CLONE_NEWNET) on the calling thread. Returns 0 or -errno. */
int kvmnet_setns_net(int fd);

/* unshare(CLONE_NEWNET) on the calling thread. Returns 0 or -errno. */
int kvmnet_unshare_net(void);

/* unshare(CLONE_NEWNS) on the calling thread. Returns 0 or -errno. */
int kvmnet_unshare_mount(void);

/* mount("none", "/", NULL, MS_SLAVE|MS_REC, NULL): stop mounts propagating back. 0 or -errno. */
int kvmnet_make_mounts_slave(void);

/*
 * Lazily unmounts /sys and mounts a fresh sysfs there (read-only when the old one was),
 * so /sys/class/net shows the current network namespace, as `ip netns exec` does.
 * NAME is the mount source shown in /proc/mounts. Returns 0 or -errno.
 */
int kvmnet_remount_sysfs(const char *name);

#endif
