/// What the host looked like when a command started: one dump of each kind.
public struct HostObservation: Sendable {
    public var links: [LinkInfo] { didSet { reindex() } }
    public var addresses: [InterfaceAddress]
    public var routes: [RouteInfo]
    /// Name and ifindex → position in `links`: lookups stay O(1) with a thousand taps.
    private var byName: [String: Int] = [:]
    private var byIndex: [Int32: Int] = [:]

    public init(links: [LinkInfo], addresses: [InterfaceAddress], routes: [RouteInfo]) {
        self.links = links; self.addresses = addresses; self.routes = routes
        reindex()
    }

    private mutating func reindex() {
        if byName.count == links.count - 1, let last = links.last {
            byName[last.name] = links.count - 1
            if last.index > 0 { byIndex[last.index] = links.count - 1 }
            return
        }
        byName = [:]; byIndex = [:]
        for (i, l) in links.enumerated() { byName[l.name] = i; if l.index > 0 { byIndex[l.index] = i } }
    }

    public func link(_ name: String) -> LinkInfo? { byName[name].map { links[$0] } }
    public func link(index: Int32) -> LinkInfo? { byIndex[index].map { links[$0] } }
    public func master(of name: String) -> String? {
        guard let l = link(name), l.masterIndex != 0 else { return nil }
        return link(index: l.masterIndex)?.name
    }
}

/// Turns a resolved spec and an observation of the host into the ordered steps of `up`.
///
/// Pure. The plan is the same for a first `up` and a repairing one: the executor skips what
/// is already in place.
public enum Planner {
    /// Checks that `up` may touch this host at all, before anything changes.
    /// Throws `.failure` naming the interface and the reason (exit 1).
    /// - Parameter record: the network's record when it is (partly) up already.
    /// - Parameter guestTaps: the taps qemu will create for guests `up` launches; they must not exist.
    public static func check(_ spec: NetworkSpec, on host: HostObservation, record: NetworkRecord?,
                             others: [NetworkRecord], isWireless: (String) -> Bool,
                             force: Bool, guestTaps: [String] = []) throws(KVMNetError) {
        let ours = Set(record?.journal.compactMap { e -> String? in
            if case .createdLink(let n, _) = e { return n } else { return nil }
        } ?? [])
        for other in others where other.name != spec.name {
            if other.spec.bridge == spec.bridge {
                throw .failure("bridge \(spec.bridge) belongs to kvmnet network \(other.name); choose another --bridge")
            }
            if spec.model == .bridged, other.spec.uplink == spec.uplink {
                throw .failure("uplink \(spec.uplink!) is already bridged by kvmnet network \(other.name)")
            }
        }
        var wanted = [(spec.bridge.rawValue, "bridge")]
        wanted += spec.tapNames.map { ($0.rawValue, "tun") }
        for other in others where other.name != spec.name {
            let theirs = Set(other.spec.tapNames.map(\.rawValue) + (other.guests ?? []).map(\.spec.tap) + (other.hookTaps ?? []))
            if let clash = (wanted.map(\.0) + guestTaps).first(where: theirs.contains) {
                throw .failure("tap \(clash) belongs to kvmnet network \(other.name); give this network another --name")
            }
        }
        let running = Set((record?.guests ?? []).map(\.spec.tap))
        for tap in guestTaps where host.link(tap) != nil && !running.contains(tap) {
            throw .failure("an interface named \(tap) already exists: qemu must create the guest's tap itself; "
                + "remove it, or give this network another --name")
        }
        for (name, kind) in wanted {
            guard let l = host.link(name) else { continue }
            if !ours.contains(name) {
                throw .failure("a \(l.kind ?? "network") interface named \(name) already exists and was not created by kvmnet; "
                    + "kvmnet never adopts or deletes it: choose another " + (kind == "bridge" ? "--bridge" : "network --name"))
            }
            if l.kind != kind {
                throw .failure("\(name) was created by kvmnet as a \(kind) but is now a \(l.kind ?? "network") interface; run `kvmnet down` first")
            }
        }
        if spec.model == .bridged, let uplink = spec.uplink?.rawValue {
            guard let l = host.link(uplink) else { throw .failure("uplink \(uplink) does not exist") }
            if l.isBridge { throw .failure("uplink \(uplink) is a bridge; name the NIC to enslave, not a bridge") }
            if isWireless(uplink) {
                throw .failure("uplink \(uplink) is a wireless station interface, which Linux cannot bridge (EOPNOTSUPP); use the routed or nat model")
            }
            if l.kind == "tun" || l.name == "lo" { throw .failure("uplink \(uplink) is not an Ethernet NIC") }
            if let m = host.master(of: uplink), m != spec.bridge.rawValue {
                throw .failure("uplink \(uplink) is already a port of \(m)")
            }
            if record == nil, !force,
               let dyn = host.addresses.first(where: { $0.interface == uplink && $0.family == .inet && $0.isDynamic }) {
                throw .failure("uplink \(uplink) has a dynamic (DHCP-leased) address \(dyn.address)/\(dyn.prefixLength): "
                    + "once moved to \(spec.bridge) the DHCP client would not renew it; configure the bridge in your network manager, or pass --force")
            }
        }
        if spec.hostAddress != nil, let subnet = spec.subnet {
            for a in host.addresses where a.interface != spec.bridge.rawValue {
                if let c = a.ipv4, c.overlaps(subnet) {
                    throw .failure("subnet \(subnet) overlaps address \(c) on \(a.interface); choose another --subnet")
                }
            }
            for r in host.routes where r.interface != spec.bridge.rawValue && !r.isDefault {
                if let d = r.ipv4Destination, d.overlaps(subnet) {
                    throw .failure("subnet \(subnet) overlaps route \(r.destination) via \(r.interface); choose another --subnet")
                }
            }
        }
    }

    /// The steps of `up`, in order.
    /// - Parameter reservedGroups: link groups other networks' records hold (their links may be
    ///   gone or not made yet).
    public static func plan(_ spec: NetworkSpec, on host: HostObservation, record: NetworkRecord?,
                            forwards: [PortForward] = [], dnsmasq: DnsmasqPlan? = nil,
                            reservedGroups: Set<UInt32> = []) -> [HostStep] {
        let br = spec.bridge.rawValue
        let group = tapGroup(spec, on: host, record: record, reserved: reservedGroups)
        // The bridge joins its taps' group, so that `down` deletes it with them in one request
        // (one kernel barrier, not two). Not a bridged network's: it carries the uplink's
        // addresses, which go back to the uplink before the bridge goes.
        let bridgeGroup = spec.tapNames.isEmpty || spec.model == .bridged ? nil : group
        var steps: [HostStep] = [.createBridge(name: br, mac: spec.bridgeMAC, mtu: spec.mtu, group: bridgeGroup)]
        if spec.model != .bridged {
            // No IPv6 on these bridges: without this the bridge takes a link-local address
            // the moment it is up, and guests of an isolated network reach the host over it.
            steps.append(.setDeviceSysctl(key: "net/ipv6/conf/\(br)/accept_ra", value: "0"))
            steps.append(.setDeviceSysctl(key: "net/ipv6/conf/\(br)/disable_ipv6", value: "1"))
        }
        if let a = spec.hostAddress {
            steps.append(.addAddress(InterfaceAddress(interface: br, family: .inet, address: a.address.description,
                                                      prefixLength: a.prefixLength, broadcast: a.broadcast.description)))
        }
        steps.append(.setUp(br))
        // The firewall transaction and dnsmasq's start run in their own processes while the
        // taps are made (the executor waits for them before any later step).
        steps.append(.installFirewall(FirewallPlan(spec: spec, forwards: forwards)))
        if let d = dnsmasq { steps.append(.startDnsmasq(d)) }
        for tap in spec.tapNames.map(\.rawValue) {
            steps.append(.createTap(name: tap, owner: spec.tapOwner))
            steps.append(.attach(port: tap, bridge: br, mtu: spec.mtu, group: group))
        }
        if spec.model == .bridged, let uplink = spec.uplink?.rawValue {
            steps += bridgedMove(uplink: uplink, bridge: br, host: host, record: record)
        }
        // Rules first, forwarding after: no moment where the host forwards unfiltered.
        if spec.model.needsForwarding {
            steps.append(.setSysctl(key: "net.ipv4.ip_forward", value: "1"))
        }
        return steps
    }

    /// The link group of the network's taps: the recorded one, else a number derived from the
    /// network and its namespace that no link uses yet and no other record holds (group 0 is
    /// everyone's default).
    public static func tapGroup(_ spec: NetworkSpec, on host: HostObservation, record: NetworkRecord?,
                                reserved: Set<UInt32> = []) -> UInt32 {
        if let g = record?.tapGroup { return g }
        let used = Set(host.links.map(\.group)).union(reserved)
        var g = 0x4b560000 | UInt32(truncatingIfNeeded: StableHash.fnv1a64("group:\(spec.name):\(spec.bridgeMAC)") & 0xffff)
        while used.contains(g) { g &+= 1 }
        return g
    }

    /// The uplink's addresses and routes move to the bridge as one run of steps:
    /// 1. the addresses are added to the bridge, 2. the uplink becomes a port,
    /// 3. its routes and 4. its addresses are taken off it, 5. the routes are added on the bridge.
    /// Undone in reverse, the uplink gets its addresses back before its routes.
    ///
    /// Addresses and routes are added in the order that rebuilds them exactly, and taken off in
    /// the reverse order, so that undoing any part of the run (in reverse) adds them back in
    /// that order too:
    /// - IPv4 addresses as the kernel lists them: it makes an address secondary when one of the
    ///   same subnet came before, and the prefix route takes the primary's address as `src`.
    ///   Taken off last first, a primary never goes while its secondaries are there (with
    ///   `promote_secondaries=0` the kernel would delete them with it, unjournaled).
    /// - IPv6 addresses in reverse: the kernel lists the newest first.
    /// - Routes without a gateway before routes with one, whose gateway they may make reachable.
    /// Routes of every table but `local` move (the kernel flushes a table's routes through the
    /// uplink when its last IPv4 address goes); policy rules (`ip rule`) stay as they are.
    ///
    /// Known limits: DHCP lifetimes of addresses and the expiry of IPv6 routes are not kept;
    /// moved ones come back permanent.
    static func bridgedMove(uplink: String, bridge: String, host: HostObservation, record: NetworkRecord?) -> [HostStep] {
        var addrs: [InterfaceAddress] = []
        var routes: [RouteInfo] = []
        let recorded = record?.journal ?? []
        let recordedAddrs = recorded.compactMap { e -> InterfaceAddress? in
            if case .removedAddress(let a) = e { return a } else { return nil }
        }
        let recordedRoutes = recorded.compactMap { e -> RouteInfo? in
            if case .removedRoute(let r) = e { return r } else { return nil }
        }
        if !recordedAddrs.isEmpty || !recordedRoutes.isEmpty {
            // Recorded as they were taken off: in reverse.
            addrs = recordedAddrs.reversed()
            routes = recordedRoutes.reversed()
        } else {
            let own = host.addresses.filter { a in
                a.interface == uplink && (a.family == .inet || (!a.isLinkLocal && !a.isDynamic && a.scope == 0))
            }
            addrs = own.filter { $0.family == .inet } + own.filter { $0.family == .inet6 }.reversed()
            // Prefix routes the kernel made for an address come back with the address on either
            // side; deleting one by hand while its address stays would leave nothing to re-add
            // it against (EEXIST from the bridge's twin). Unless addresses are `noprefixroute`,
            // where the routes were added by whoever added the addresses.
            let handMadePrefixes = addrs.contains { $0.flags & AddressFlags.noPrefixRoute != 0 }
            let moved = host.routes.filter { r in
                r.interface == uplink && (r.proto != 2 || handMadePrefixes)
                    && !(r.family == .inet6 && (r.destination.lowercased().hasPrefix("fe80:")
                                                || r.destination.lowercased().hasPrefix("ff00:")))
            }
            routes = moved.filter { $0.gateway == nil } + moved.filter { $0.gateway != nil }
        }
        var steps: [HostStep] = addrs.map { .addAddress($0.on(bridge)) }
        steps.append(.enslave(port: uplink, bridge: bridge, recorded: true))
        steps += routes.reversed().map { .removeRoute($0) }
        steps += addrs.reversed().map { .removeAddress($0) }
        steps += routes.map { .addRoute($0.on(bridge)) }
        return steps
    }
}
