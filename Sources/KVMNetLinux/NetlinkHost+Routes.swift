import CLibnl
import Glibc
import KVMNetCore

extension NetlinkHost {
    /// The local table (RT_TABLE_LOCAL): the kernel's own routes to the host's addresses.
    static let localTable: UInt32 = 255
    /// RTN_UNICAST.
    static let unicast: UInt8 = 1

    /// Unicast routes of every table but `local`, both families, with their table, settable
    /// nexthop flags (onlink) and RTAX metrics. Equals `ip route show table all; ip -6 route
    /// show table all` less the local table.
    ///
    /// Multipath routes (more than one nexthop) are skipped: `RouteInfo` has one gateway and one
    /// interface. So are routes whose interface is unknown. Local, broadcast and multicast
    /// routes live in the local table or have other types and never appear. State flags of
    /// the nexthop (linkdown, dead) are dropped.
    public func routes() throws(HostError) -> [RouteInfo] {
        try routes(names: Self.names(try links()))
    }

    func routes(names: [Int32: String]) throws(HostError) -> [RouteInfo] {
        var cache: OpaquePointer?
        try checkLibnl(rtnl_route_alloc_cache(sock, AF_UNSPEC, 0, &cache), "list routes")
        defer { nl_cache_free(cache) }
        var result: [RouteInfo] = []
        var object = nl_cache_get_first(cache)   // borrowed from the cache: never put
        while let route = object {
            object = nl_cache_get_next(route)
            let family = Int32(rtnl_route_get_family(route))
            guard family == AF_INET || family == AF_INET6,
                  rtnl_route_get_table(route) != Self.localTable,
                  rtnl_route_get_type(route) == Self.unicast,
                  rtnl_route_get_nnexthops(route) == 1,
                  let nexthop = rtnl_route_nexthop_n(route, 0),          // borrowed
                  let name = names[rtnl_route_nh_get_ifindex(nexthop)],
                  let destination = NetlinkAddress.textWithPrefix(rtnl_route_get_dst(route)) else { continue }
            result.append(RouteInfo(
                family: family == AF_INET ? .inet : .inet6,
                destination: destination,
                gateway: NetlinkAddress.text(rtnl_route_nh_get_gateway(nexthop)),
                interface: name,
                metric: rtnl_route_get_priority(route),
                proto: rtnl_route_get_protocol(route),
                scope: rtnl_route_get_scope(route),
                preferredSource: NetlinkAddress.text(rtnl_route_get_pref_src(route)),
                table: rtnl_route_get_table(route),
                nexthopFlags: UInt32(rtnl_route_nh_get_flags(nexthop)) & NexthopFlags.settable,
                metrics: Self.metrics(of: route)))
        }
        return result
    }

    /// The RTAX metrics of a borrowed route.
    private static func metrics(of route: OpaquePointer) -> [RouteMetric: UInt32] {
        var result: [RouteMetric: UInt32] = [:]
        for m in RouteMetric.allCases {
            var value: UInt32 = 0
            if rtnl_route_get_metric(route, m.rtax, &value) == 0 { result[m] = value }
        }
        return result
    }

    /// Adds a unicast route with NLM_F_CREATE|NLM_F_EXCL, in its table, with its metrics and
    /// nexthop flags. Equals `ip route add DST [via GW] dev IF table T metric M proto P
    /// scope S [src SRC] [mtu N advmss N …] [onlink]`.
    /// Throws `exists` when the same route is there. IPv6 takes metric 0 as 1024.
    public func addRoute(_ route: RouteInfo) throws(HostError) {
        let operation = "add route \(route)"
        let r = try build(route, operation, matchAnyProtocol: false)
        defer { rtnl_route_put(r) }
        try checkLibnl(rtnl_route_add(sock, r, NLM_F_CREATE | NLM_F_EXCL), operation)
    }

    /// Deletes a route of its table. Equals `ip route del DST [via GW] dev IF table T metric M scope S`:
    /// any protocol and any metrics match; the scope (IPv4) must match. Throws `notFound` when
    /// there is none.
    public func deleteRoute(_ route: RouteInfo) throws(HostError) {
        let operation = "delete route \(route)"
        let r = try build(route, operation, matchAnyProtocol: true)
        defer { rtnl_route_put(r) }
        try checkLibnl(rtnl_route_delete(sock, r, 0), operation)
    }

    /// A new `rtnl_route` (owned by the caller: `rtnl_route_put`) describing `route`.
    /// - Parameter matchAnyProtocol: for a delete: protocol 0 and no metrics, so that any match.
    private func build(_ route: RouteInfo, _ operation: String, matchAnyProtocol: Bool) throws(HostError) -> OpaquePointer {
        let ifindex = try index(of: route.interface, for: operation)
        guard let r = rtnl_route_alloc() else { throw .other("\(operation): out of memory") }
        do throws(HostError) {
            try checkLibnl(rtnl_route_set_family(r, UInt8(NetlinkAddress.family(route.family))), operation)
            rtnl_route_set_table(r, route.table)
            try checkLibnl(rtnl_route_set_type(r, Self.unicast), operation)
            rtnl_route_set_scope(r, route.scope)
            rtnl_route_set_protocol(r, matchAnyProtocol ? 0 : route.proto)
            rtnl_route_set_priority(r, route.metric)
            if !matchAnyProtocol {
                for (m, value) in route.metrics {
                    try checkLibnl(rtnl_route_set_metric(r, m.rtax, value), "\(operation) (\(m.rawValue))")
                }
            }
            let destination = try NetlinkAddress.parse(route.destination, family: route.family, operation)
            defer { nl_addr_put(destination) }
            try checkLibnl(rtnl_route_set_dst(r, destination), operation)
            if let s = route.preferredSource {
                let source = try NetlinkAddress.parse(s, family: route.family, operation)
                defer { nl_addr_put(source) }
                try checkLibnl(rtnl_route_set_pref_src(r, source), operation)
            }
            guard let nexthop = rtnl_route_nh_alloc() else { throw .other("\(operation): out of memory") }
            rtnl_route_nh_set_ifindex(nexthop, ifindex)
            // libnl sends a single nexthop's flags in rtm_flags, where the kernel looks for onlink.
            let flags = route.nexthopFlags & NexthopFlags.settable
            if flags != 0 { rtnl_route_nh_set_flags(nexthop, flags) }
            rtnl_route_add_nexthop(r, nexthop)   // the route owns the nexthop from here on
            if let g = route.gateway {
                let gateway = try NetlinkAddress.parse(g, family: route.family, operation)
                defer { nl_addr_put(gateway) }
                rtnl_route_nh_set_gateway(nexthop, gateway)   // takes its own reference
            }
            return r
        } catch {
            rtnl_route_put(r)
            throw error
        }
    }
}
