#include "kvmnet_shim.h"

#include <netlink/netlink.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if.h>
#include <string.h>
#include <sys/socket.h>

/*
 * libnl's rtnl_link_bridge_add() sends NLM_F_CREATE without NLM_F_EXCL (it succeeds over an
 * existing tap of the same name) and libnl 3.7 has no forward-delay setter, so the message is
 * built here:
 *   RTM_NEWLINK ifinfomsg{AF_UNSPEC}
 *     IFLA_IFNAME, IFLA_ADDRESS, IFLA_MTU,
 *     IFLA_LINKINFO { IFLA_INFO_KIND "bridge",
 *                     IFLA_INFO_DATA { IFLA_BR_STP_STATE 0, IFLA_BR_FORWARD_DELAY 0 } }
 */
int kvmnet_nl_bridge_add(struct nl_sock *sock, const char *name, const uint8_t *mac, uint32_t mtu) {
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
    if (msg == NULL) return -NLE_NOMEM;

    struct ifinfomsg ifi;
    memset(&ifi, 0, sizeof ifi);
    ifi.ifi_family = AF_UNSPEC;
    int err = -NLE_MSGSIZE;
    struct nlattr *linkinfo, *data;
    if (nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) goto out;
    if (nla_put_string(msg, IFLA_IFNAME, name) < 0) goto out;
    if (nla_put(msg, IFLA_ADDRESS, 6, mac) < 0) goto out;
    if (nla_put_u32(msg, IFLA_MTU, mtu) < 0) goto out;
    if ((linkinfo = nla_nest_start(msg, IFLA_LINKINFO)) == NULL) goto out;
    if (nla_put_string(msg, IFLA_INFO_KIND, "bridge") < 0) goto out;
    if ((data = nla_nest_start(msg, IFLA_INFO_DATA)) == NULL) goto out;
    if (nla_put_u32(msg, IFLA_BR_STP_STATE, 0) < 0) goto out;
    if (nla_put_u32(msg, IFLA_BR_FORWARD_DELAY, 0) < 0) goto out;
    nla_nest_end(msg, data);
    nla_nest_end(msg, linkinfo);

    err = nl_send_auto(sock, msg);
    if (err >= 0) err = nl_wait_for_ack(sock);
out:
    nlmsg_free(msg);
    return err < 0 ? err : 0;
}

/*
 * The kernel's group delete: RTM_DELLINK with no ifindex and no name, only IFLA_GROUP,
 * removes every link of the group in one request (one rcu_barrier for all, where one request
 * per device waits ~17 ms each). libnl has no call for it.
 */
int kvmnet_nl_group_delete(struct nl_sock *sock, uint32_t group) {
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_DELLINK, NLM_F_ACK);
    if (msg == NULL) return -NLE_NOMEM;
    struct ifinfomsg ifi;
    memset(&ifi, 0, sizeof ifi);
    ifi.ifi_family = AF_UNSPEC;
    int err = -NLE_MSGSIZE;
    if (nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) goto out;
    if (nla_put_u32(msg, IFLA_GROUP, group) < 0) goto out;
    err = nl_send_auto(sock, msg);
    if (err >= 0) err = nl_wait_for_ack(sock);
out:
    nlmsg_free(msg);
    return err < 0 ? err : 0;
}

/*
 * `ip link set dev IFINDEX [mtu M] [master B | nomaster] [group G] [up|down]` as one
 * RTM_NEWLINK: a negative argument leaves that attribute alone (master 0 = nomaster).
 */
int kvmnet_nl_link_set(struct nl_sock *sock, int ifindex, int64_t mtu, int64_t master, int64_t group, int up) {
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_ACK);
    if (msg == NULL) return -NLE_NOMEM;
    struct ifinfomsg ifi;
    memset(&ifi, 0, sizeof ifi);
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = ifindex;
    if (up >= 0) { ifi.ifi_change = IFF_UP; ifi.ifi_flags = up ? IFF_UP : 0; }
    int err = -NLE_MSGSIZE;
    if (nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) goto out;
    if (mtu >= 0 && nla_put_u32(msg, IFLA_MTU, (uint32_t)mtu) < 0) goto out;
    if (group >= 0 && nla_put_u32(msg, IFLA_GROUP, (uint32_t)group) < 0) goto out;
    if (master >= 0 && nla_put_u32(msg, IFLA_MASTER, (uint32_t)master) < 0) goto out;
    err = nl_send_auto(sock, msg);
    if (err >= 0) err = nl_wait_for_ack(sock);
out:
    nlmsg_free(msg);
    return err < 0 ? err : 0;
}
