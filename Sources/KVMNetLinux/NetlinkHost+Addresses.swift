import CLibnl
import Glibc
import KVMNetCore

extension NetlinkHost {
    /// IFA_F_* flags a caller may ask for: nodad, optimistic, homeaddress, mngtmpaddr,
    /// noprefixroute, mcautojoin. The others (permanent, secondary, tentative, deprecated,
    /// dadfailed) are state the kernel sets, so read-back flags can be passed back unchanged.
    static let settableAddressFlags: UInt32 = 0x02 | 0x04 | 0x10 | 0x100 | 0x200 | 0x400

    /// Every address of the namespace, both families. Equals `ip -d addr show`.
    ///
    /// Flags are the full 32-bit IFA_FLAGS (permanent, noprefixroute, …); the label is reported
    /// only when it differs from the interface name.
    public func addresses() throws(HostError) -> [InterfaceAddress] {
        try addresses(names: Self.names(try links()))
    }

    /// Interface index → name, for naming the links of addresses and routes.
    static func names(_ links: [LinkInfo]) -> [Int32: String] {
        Dictionary(links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
    }

    /// Links, addresses and routes with one link dump (not one per kind).
    public func dump() throws(HostError) -> (links: [LinkInfo], addresses: [InterfaceAddress], routes: [RouteInfo]) {
        let links = try links()
        let names = Self.names(links)
        return (links, try addresses(names: names), try routes(names: names))
    }

    func addresses(names: [Int32: String]) throws(HostError) -> [InterfaceAddress] {
        var cache: OpaquePointer?
        try checkLibnl(rtnl_addr_alloc_cache(sock, &cache), "list addresses")
        defer { nl_cache_free(cache) }
        var result: [InterfaceAddress] = []
        var object = nl_cache_get_first(cache)   // borrowed from the cache: never put
        while let addr = object {
            object = nl_cache_get_next(addr)
            let family = rtnl_addr_get_family(addr)
            guard family == AF_INET || family == AF_INET6,
                  let name = names[rtnl_addr_get_ifindex(addr)],
                  let local = NetlinkAddress.text(rtnl_addr_get_local(addr)) else { continue }
            let label = rtnl_addr_get_label(addr).map { String(cString: $0) }
            result.append(InterfaceAddress(
                interface: name,
                family: family == AF_INET ? .inet : .inet6,
                address: local,
                prefixLength: Int(rtnl_addr_get_prefixlen(addr)),
                scope: UInt8(truncatingIfNeeded: rtnl_addr_get_scope(addr)),
                flags: UInt32(rtnl_addr_get_flags(addr)),
                broadcast: NetlinkAddress.text(rtnl_addr_get_broadcast(addr)),
                label: label == name || label?.isEmpty == true ? nil : label))
        }
        return result
    }

    /// Adds a permanent address. Equals `ip addr add ADDR/LEN [broadcast B] [label L] scope S
    /// [noprefixroute] dev IF` (NLM_F_CREATE|NLM_F_EXCL). Throws `exists` when it is there.
    ///
    /// Only the settable flags of `address.flags` are sent (see `settableAddressFlags`);
    /// the kernel adds `permanent` itself.
    public func addAddress(_ address: InterfaceAddress) throws(HostError) {
        try addAddress(address, lifetimes: nil)
    }

    /// Adds an address, with finite lifetimes (seconds) when given: such an address is not
    /// permanent. Equals `ip addr add … valid_lft V preferred_lft P`.
    func addAddress(_ address: InterfaceAddress, lifetimes: (valid: UInt32, preferred: UInt32)?) throws(HostError) {
        let operation = "add address \(address)"
        let ifindex = try index(of: address.interface, for: operation)
        guard let addr = rtnl_addr_alloc() else { throw .other("\(operation): out of memory") }
        defer { rtnl_addr_put(addr) }
        try fill(addr, address, ifindex: ifindex, operation)
        rtnl_addr_set_scope(addr, Int32(address.scope))
        let flags = address.flags & Self.settableAddressFlags
        if flags != 0 { rtnl_addr_set_flags(addr, flags) }
        if let b = address.broadcast {
            let broadcast = try NetlinkAddress.parse(b, family: address.family, operation)
            defer { nl_addr_put(broadcast) }
            try checkLibnl(rtnl_addr_set_broadcast(addr, broadcast), operation)
        }
        if let label = address.label, label != address.interface {
            try checkLibnl(rtnl_addr_set_label(addr, label), "\(operation) label \(label)")
        }
        if let lifetimes {
            rtnl_addr_set_valid_lifetime(addr, lifetimes.valid)
            rtnl_addr_set_preferred_lifetime(addr, lifetimes.preferred)
        }
        try checkLibnl(rtnl_addr_add(sock, addr, NLM_F_EXCL), operation)
    }

    /// Equals `ip addr del ADDR/LEN dev IF`. Throws `notFound` when the interface or the
    /// address is missing.
    public func deleteAddress(_ address: InterfaceAddress) throws(HostError) {
        let operation = "delete address \(address)"
        let ifindex = try index(of: address.interface, for: operation)
        guard let addr = rtnl_addr_alloc() else { throw .other("\(operation): out of memory") }
        defer { rtnl_addr_put(addr) }
        try fill(addr, address, ifindex: ifindex, operation)
        try checkLibnl(rtnl_addr_delete(sock, addr, 0), operation, noAddressIsMissing: true)
    }

    /// Sets what identifies an address: interface, family, local address, prefix length.
    private func fill(_ addr: OpaquePointer, _ address: InterfaceAddress, ifindex: Int32, _ operation: String) throws(HostError) {
        rtnl_addr_set_ifindex(addr, ifindex)
        rtnl_addr_set_family(addr, NetlinkAddress.family(address.family))
        let local = try NetlinkAddress.parse(address.address, family: address.family, operation)
        defer { nl_addr_put(local) }   // rtnl_addr_set_local takes its own reference
        try checkLibnl(rtnl_addr_set_local(addr, local), operation)
        rtnl_addr_set_prefixlen(addr, Int32(address.prefixLength))
    }
}
