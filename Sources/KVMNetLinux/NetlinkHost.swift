import CKVMNetShim
import CLibnl
import Glibc
import KVMNetCore

/// Links, addresses and routes of one network namespace, through libnl (rtnetlink).
///
/// The instance owns one `nl_sock`. It is **not thread-safe**: use it from one thread at a time
/// (an actor or a lock if it must be shared). The socket is bound to the network namespace of
/// the thread that created the instance and stays bound to it; taps, whose creation goes through
/// `/dev/net/tun`, land in the namespace of the thread that calls `createTap`, so create and use
/// the instance on the same thread. Changes need CAP_NET_ADMIN in that namespace.
///
/// Errors are `HostError`: `exists` on creating something that is there, `notFound` on deleting
/// or changing something that is not; the message names the operation, the object and libnl's text.
public final class NetlinkHost: LinkControl {
    /// The rtnetlink socket; internal so the address and route files can use it.
    let sock: OpaquePointer
    /// Bridge name → ifindex, for enslaving many taps with one request each.
    private var masterIndex: [String: Int32] = [:]

    /// Opens and connects an rtnetlink socket in the calling thread's network namespace.
    public init() throws(HostError) {
        guard let s = nl_socket_alloc() else { throw .other("open netlink socket: out of memory") }
        let code = nl_connect(s, NETLINK_ROUTE)
        if code < 0 {
            nl_socket_free(s)
            throw libnlError(code, "connect netlink socket")
        }
        sock = s
    }

    deinit { nl_socket_free(sock) }

    // MARK: Reading links

    /// Every link of the namespace, in one dump without statistics. Equals `ip link show`.
    public func links() throws(HostError) -> [LinkInfo] {
        var raw: UnsafeMutablePointer<kvmnet_link>?
        var count: Int32 = 0
        try checkLibnl(kvmnet_nl_link_dump(sock, &raw, &count), "list links")
        defer { free(raw) }
        return UnsafeBufferPointer(start: raw, count: Int(count)).map { l in
            var l = l
            func text<T>(_ field: inout T) -> String {
                withUnsafeBytes(of: &field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            }
            let kind = text(&l.kind)
            return LinkInfo(index: l.index, name: text(&l.name), kind: kind.isEmpty ? nil : kind, arpType: UInt32(l.arptype),
                            masterIndex: l.master, isUp: l.flags & UInt32(IFF_UP) != 0, mtu: l.mtu,
                            mac: l.has_mac != 0 ? withUnsafeBytes(of: l.mac) { MACAddress(Array($0)) } : nil, group: l.group)
        }
    }

    /// One link by name, or nil when there is none. Equals `ip -d link show dev NAME`.
    public func link(named name: String) throws(HostError) -> LinkInfo? {
        var link: OpaquePointer?
        let code = rtnl_link_get_kernel(sock, 0, name, &link)
        if code == -NLE_NODEV || code == -NLE_OBJ_NOTFOUND { return nil }
        try checkLibnl(code, "show link \(name)")
        guard let link else { return nil }
        defer { rtnl_link_put(link) }
        return Self.info(link)
    }

    /// Copies a borrowed `rtnl_link` into a value.
    private static func info(_ link: OpaquePointer) -> LinkInfo {
        let kind = rtnl_link_get_type(link).map { String(cString: $0) }
        return LinkInfo(index: rtnl_link_get_ifindex(link),
                        name: rtnl_link_get_name(link).map { String(cString: $0) } ?? "",
                        kind: kind,
                        arpType: rtnl_link_get_arptype(link),
                        masterIndex: rtnl_link_get_master(link),
                        isUp: rtnl_link_get_flags(link) & UInt32(IFF_UP) != 0,
                        mtu: rtnl_link_get_mtu(link),
                        mac: NetlinkAddress.mac(rtnl_link_get_addr(link)),
                        group: rtnl_link_get_group(link))
    }

    /// The index of the link `name`, or `notFound` naming the operation.
    func index(of name: String, for operation: @autoclosure () -> String) throws(HostError) -> Int32 {
        guard let link = try link(named: name) else {
            throw .notFound("\(operation()): no link named \(name)")
        }
        return link.index
    }

    // MARK: Creating and deleting links

    /// Creates a bridge with STP off and forward delay 0, its MAC and MTU set, down, in link
    /// group `group` when given.
    ///
    /// Equals `ip link add NAME address MAC mtu MTU [group G] type bridge stp_state 0 forward_delay 0`.
    /// Sent with NLM_F_CREATE|NLM_F_EXCL: throws `exists` when any link of that name exists,
    /// a tap included (libnl's `rtnl_link_bridge_add` would silently succeed there).
    public func createBridge(name: String, mac: MACAddress, mtu: UInt32, group: UInt32? = nil) throws(HostError) {
        try checkLibnl(kvmnet_nl_bridge_add(sock, name, mac.bytes, mtu, group.map(Int64.init) ?? -1), "add bridge \(name)")
    }

    /// Creates a persistent tap owned by `owner` (a uid), down.
    ///
    /// Equals `ip tuntap add NAME mode tap user OWNER`. The tap is created in the network
    /// namespace of the *calling thread* (it opens `/dev/net/tun`), which should be the one this
    /// instance's socket lives in. Throws `exists` when any link of that name exists.
    public func createTap(name: String, owner: UInt32) throws(HostError) {
        var failedCall: UnsafePointer<CChar>?
        let result = kvmnet_tap_create(name, owner, &failedCall)
        guard result < 0 else { return }
        let call = failedCall.map { String(cString: $0) } ?? "?"
        if -result == EEXIST {
            throw .exists("add tap \(name): a link named \(name) exists")
        }
        if call == "open /dev/net/tun" && -result == ENOENT {
            throw .other("add tap \(name): /dev/net/tun is missing (modprobe tun)")
        }
        throw errnoError(-result, "add tap \(name) (\(call))")
    }

    /// Deletes a link (a persistent tap too). Equals `ip link del NAME`.
    /// Throws `notFound` when there is none.
    public func deleteLink(name: String) throws(HostError) {
        masterIndex[name] = nil
        guard let link = rtnl_link_alloc() else { throw .other("delete link \(name): out of memory") }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        try checkLibnl(rtnl_link_delete(sock, link), "delete link \(name)")
    }

    // MARK: Changing links

    /// One RTM_NEWLINK for all of `c` (read the link once for its index, then change it).
    /// Equals `ip link set NAME [mtu M] [master B | nomaster] [group G] [up | down]`.
    /// Throws `notFound` when the link or the bridge is missing.
    public func setLink(_ name: String, _ c: LinkChange) throws(HostError) {
        var words: [String] = []
        if let m = c.mtu { words.append("mtu \(m)") }
        if let m = c.master { words.append(m.map { "master \($0)" } ?? "nomaster") }
        if let g = c.group { words.append("group \(g)") }
        if let u = c.up { words.append(u ? "up" : "down") }
        let operation = "set link \(name) " + words.joined(separator: " ")
        let index = try index(of: name, for: operation)
        var master: Int64 = -1
        if let m = c.master {
            if let bridge = m {
                if let cached = masterIndex[bridge] { master = Int64(cached) } else {
                    let i = try self.index(of: bridge, for: operation)
                    masterIndex[bridge] = i
                    master = Int64(i)
                }
            } else { master = 0 }
        }
        try checkLibnl(kvmnet_nl_link_set(sock, index, c.mtu.map(Int64.init) ?? -1, master,
                                          c.group.map(Int64.init) ?? -1, c.up.map { $0 ? 1 : 0 } ?? -1), operation)
    }

    /// Equals `ip link del group G`.
    public func deleteLinks(group: UInt32) throws(HostError) {
        masterIndex = [:]
        try checkLibnl(kvmnet_nl_group_delete(sock, group), "delete link group \(group)")
    }

}
