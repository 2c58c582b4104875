#include "kvmnet_shim.h"

#include <netlink/netlink.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
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
