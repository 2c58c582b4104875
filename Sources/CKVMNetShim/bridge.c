#include "kvmnet_shim.h"

#include <netlink/netlink.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if.h>
#include <stdlib.h>
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
int kvmnet_nl_bridge_add(struct nl_sock *sock, const char *name, const uint8_t *mac, uint32_t mtu, int64_t group) {
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
    if (group >= 0 && nla_put_u32(msg, IFLA_GROUP, (uint32_t)group) < 0) goto out;
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

/* One link of a dump: what kvmnet reads, nothing more (no stats, no per-family settings). */
struct dump_state {
    struct kvmnet_link *links;
    int count, capacity;
    int error;
};

static int dump_one(struct nl_msg *msg, void *arg) {
    struct dump_state *st = arg;
    struct nlmsghdr *h = nlmsg_hdr(msg);
    if (h->nlmsg_type != RTM_NEWLINK) return NL_SKIP;
    struct nlattr *tb[IFLA_MAX + 1];
    if (nlmsg_parse(h, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0 || tb[IFLA_IFNAME] == NULL) return NL_SKIP;
    if (st->count == st->capacity) {
        int cap = st->capacity ? st->capacity * 2 : 64;
        struct kvmnet_link *grown = realloc(st->links, (size_t)cap * sizeof *grown);
        if (grown == NULL) { st->error = -NLE_NOMEM; return NL_STOP; }
        st->links = grown;
        st->capacity = cap;
    }
    struct ifinfomsg *ifi = nlmsg_data(h);
    struct kvmnet_link *l = &st->links[st->count++];
    memset(l, 0, sizeof *l);
    l->index = ifi->ifi_index;
    l->arptype = ifi->ifi_type;
    l->flags = ifi->ifi_flags;
    nla_strlcpy(l->name, tb[IFLA_IFNAME], sizeof l->name);
    if (tb[IFLA_MTU]) l->mtu = nla_get_u32(tb[IFLA_MTU]);
    if (tb[IFLA_MASTER]) l->master = (int)nla_get_u32(tb[IFLA_MASTER]);
    if (tb[IFLA_GROUP]) l->group = nla_get_u32(tb[IFLA_GROUP]);
    if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) == 6) {
        memcpy(l->mac, nla_data(tb[IFLA_ADDRESS]), 6);
        l->has_mac = 1;
    }
    if (tb[IFLA_LINKINFO]) {
        struct nlattr *info[IFLA_INFO_MAX + 1];
        if (nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) == 0 && info[IFLA_INFO_KIND])
            nla_strlcpy(l->kind, info[IFLA_INFO_KIND], sizeof l->kind);
    }
    return NL_OK;
}

int kvmnet_nl_link_dump(struct nl_sock *sock, struct kvmnet_link **links, int *count) {
    *links = NULL;
    *count = 0;
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETLINK, NLM_F_DUMP);
    if (msg == NULL) return -NLE_NOMEM;
    struct ifinfomsg ifi;
    memset(&ifi, 0, sizeof ifi);
    ifi.ifi_family = AF_UNSPEC;
    int err = -NLE_MSGSIZE;
    if (nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0
        || nla_put_u32(msg, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS) < 0) { nlmsg_free(msg); return err; }
    err = nl_send_auto(sock, msg);
    nlmsg_free(msg);
    if (err < 0) return err;
    struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
    if (cb == NULL) return -NLE_NOMEM;
    struct dump_state st = { 0 };
    nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, dump_one, &st);
    err = nl_recvmsgs(sock, cb);
    nl_cb_put(cb);
    if (err >= 0 && st.error < 0) err = st.error;
    if (err < 0) { free(st.links); return err; }
    *links = st.links;
    *count = st.count;
    return 0;
}
