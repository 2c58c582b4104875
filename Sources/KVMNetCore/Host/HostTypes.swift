/// What the kernel reports about one network interface.
public struct LinkInfo: Equatable, Codable, Sendable {
    public var index: Int32
    public var name: String
    /// The rtnetlink kind: "bridge", "tun" (taps too), "veth", "vxlan"; nil for physical NICs and `lo`.
    public var kind: String?
    /// ARP hardware type: 1 Ethernet (taps), 772 loopback, 65534 tun (no Ethernet header).
    public var arpType: UInt32
    /// Index of the bridge this link is a port of; 0 when none.
    public var masterIndex: Int32
    public var isUp: Bool
    public var mtu: UInt32
    public var mac: MACAddress?
    public var group: UInt32

    public init(index: Int32, name: String, kind: String?, arpType: UInt32 = 1, masterIndex: Int32 = 0,
                isUp: Bool = false, mtu: UInt32 = 1500, mac: MACAddress? = nil, group: UInt32 = 0) {
        self.index = index; self.name = name; self.kind = kind; self.arpType = arpType
        self.masterIndex = masterIndex; self.isUp = isUp; self.mtu = mtu; self.mac = mac; self.group = group
    }

    public var isBridge: Bool { kind == "bridge" }
    /// A tap (an Ethernet tun/tap device), as opposed to a layer-3 tun.
    public var isTap: Bool { kind == "tun" && arpType == 1 }
}

public enum AddressFamily: String, Codable, Sendable {
    case inet, inet6
}

/// One address on an interface, as `ip -d addr` shows it.
public struct InterfaceAddress: Hashable, Codable, Sendable, CustomStringConvertible {
    public var interface: String
    public var family: AddressFamily
    /// The address without prefix ("10.241.96.176", "2001:db8::5", "fe80::1").
    public var address: String
    public var prefixLength: Int
    /// Kernel scope: 0 global, 253 link, 254 host.
    public var scope: UInt8
    /// Raw IFA_F_* flags (IFA_F_PERMANENT 0x80, IFA_F_NOPREFIXROUTE 0x200, …).
    public var flags: UInt32
    /// The broadcast address for IPv4, when one is set.
    public var broadcast: String?
    /// The label (IPv4), when it differs from the interface name.
    public var label: String?

    public init(interface: String, family: AddressFamily, address: String, prefixLength: Int,
                scope: UInt8 = 0, flags: UInt32 = AddressFlags.permanent, broadcast: String? = nil, label: String? = nil) {
        self.interface = interface; self.family = family; self.address = address
        self.prefixLength = prefixLength; self.scope = scope; self.flags = flags
        self.broadcast = broadcast; self.label = label
    }

    /// Addresses configured by hand or at boot carry IFA_F_PERMANENT; DHCP and SLAAC ones do not.
    public var isDynamic: Bool { flags & AddressFlags.permanent == 0 }
    public var isLinkLocal: Bool { scope == 253 || address.lowercased().hasPrefix("fe80:") }
    public var ipv4: CIDRv4? {
        guard family == .inet, let a = IPv4Address(address) else { return nil }
        return CIDRv4(address: a, prefixLength: prefixLength)
    }

    /// The same address on another interface (for moving an uplink's addresses to its bridge).
    public func on(_ interface: String) -> InterfaceAddress {
        var a = self
        a.interface = interface
        if a.label == self.interface { a.label = nil }
        return a
    }

    public var description: String { "\(address)/\(prefixLength) dev \(interface)" }
}

public enum AddressFlags {
    public static let permanent: UInt32 = 0x80
    public static let noPrefixRoute: UInt32 = 0x200
    /// IFA_F_SECONDARY: an IPv4 address in the subnet of an earlier (primary) address of the
    /// interface. The kernel decides it from the order addresses are added in.
    public static let secondary: UInt32 = 0x01
}

/// A route metric (an RTAX_* attribute of RTA_METRICS), named as `ip route` names it.
///
/// RTAX_CC_ALGO (16, `congctl`) is missing: its value is a string, not a number, and libnl
/// reads it as a number.
public enum RouteMetric: String, Codable, CodingKeyRepresentable, CaseIterable, Comparable, Sendable {
    /// A bit mask: bit `1 << m.rtax` set means metric m is locked (`mtu lock 1400`).
    case lock, mtu, window, rtt, rttvar, ssthresh, cwnd, advmss, reordering, hoplimit, initcwnd, features
    case rtoMin = "rto_min", initrwnd, quickack
    case fastopenNoCookie = "fastopen_no_cookie"

    /// The RTAX_* number (linux/rtnetlink.h).
    public var rtax: Int32 {
        switch self {
        case .lock: 1
        case .mtu: 2
        case .window: 3
        case .rtt: 4
        case .rttvar: 5
        case .ssthresh: 6
        case .cwnd: 7
        case .advmss: 8
        case .reordering: 9
        case .hoplimit: 10
        case .initcwnd: 11
        case .features: 12
        case .rtoMin: 13
        case .initrwnd: 14
        case .quickack: 15
        case .fastopenNoCookie: 17
        }
    }

    public static func < (a: RouteMetric, b: RouteMetric) -> Bool { a.rtax < b.rtax }
}

/// RTNH_F_* flags of a route's nexthop.
public enum NexthopFlags {
    /// RTNH_F_PERVASIVE: recursive gateway lookup.
    public static let pervasive: UInt32 = 0x02
    /// RTNH_F_ONLINK: the gateway is on the link even without a route to it (`onlink`).
    public static let onlink: UInt32 = 0x04
    /// The flags a caller may ask for; the others (dead, linkdown, offload, trap, …) are state
    /// the kernel sets and are not kept.
    public static let settable: UInt32 = pervasive | onlink
}

/// One unicast route of any table but `local`, as `ip route show table all` shows it.
///
/// Known limits: the expiry of an IPv6 route learned from a router advertisement and its
/// router preference (`pref high`) are not kept, so such a route comes back permanent and
/// `pref medium`; multipath routes are not read at all.
public struct RouteInfo: Hashable, Codable, Sendable, CustomStringConvertible {
    /// RT_TABLE_MAIN.
    public static let mainTable: UInt32 = 254

    public var family: AddressFamily
    /// Destination with prefix ("0.0.0.0/0", "10.241.96.0/24", "::/0").
    public var destination: String
    public var gateway: String?
    public var interface: String
    public var metric: UInt32
    /// rtm_protocol: 2 kernel, 3 boot, 4 static, 9 ra, 16 dhcp.
    public var proto: UInt8
    /// rtm_scope: 0 universe, 253 link, 254 host.
    public var scope: UInt8
    public var preferredSource: String?
    /// The routing table: 254 main, 253 default, 1–252 and above 255 user tables.
    public var table: UInt32
    /// Settable RTNH_F_* flags of the nexthop (see `NexthopFlags.settable`): `onlink`.
    public var nexthopFlags: UInt32
    /// RTAX metrics (`mtu 1400 advmss 1300`); empty when the route has none.
    public var metrics: [RouteMetric: UInt32]

    public init(family: AddressFamily = .inet, destination: String, gateway: String? = nil, interface: String,
                metric: UInt32 = 0, proto: UInt8 = 3, scope: UInt8 = 0, preferredSource: String? = nil,
                table: UInt32 = RouteInfo.mainTable, nexthopFlags: UInt32 = 0, metrics: [RouteMetric: UInt32] = [:]) {
        self.family = family; self.destination = destination; self.gateway = gateway
        self.interface = interface; self.metric = metric; self.proto = proto; self.scope = scope
        self.preferredSource = preferredSource
        self.table = table; self.nexthopFlags = nexthopFlags; self.metrics = metrics
    }

    enum CodingKeys: String, CodingKey {
        case family, destination, gateway, interface, metric, proto, scope, preferredSource, table, nexthopFlags, metrics
    }

    /// Records written before `table`, `nexthopFlags` and `metrics` existed read as main table,
    /// no flags, no metrics.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        family = try c.decode(AddressFamily.self, forKey: .family)
        destination = try c.decode(String.self, forKey: .destination)
        gateway = try c.decodeIfPresent(String.self, forKey: .gateway)
        interface = try c.decode(String.self, forKey: .interface)
        metric = try c.decode(UInt32.self, forKey: .metric)
        proto = try c.decode(UInt8.self, forKey: .proto)
        scope = try c.decode(UInt8.self, forKey: .scope)
        preferredSource = try c.decodeIfPresent(String.self, forKey: .preferredSource)
        table = try c.decodeIfPresent(UInt32.self, forKey: .table) ?? Self.mainTable
        nexthopFlags = try c.decodeIfPresent(UInt32.self, forKey: .nexthopFlags) ?? 0
        metrics = try c.decodeIfPresent([RouteMetric: UInt32].self, forKey: .metrics) ?? [:]
    }

    public var isDefault: Bool { destination == "0.0.0.0/0" || destination == "::/0" }
    public var isMainTable: Bool { table == Self.mainTable }
    public var isOnlink: Bool { nexthopFlags & NexthopFlags.onlink != 0 }
    public var ipv4Destination: CIDRv4? { family == .inet ? CIDRv4(destination) : nil }

    public func on(_ interface: String) -> RouteInfo {
        var r = self
        r.interface = interface
        return r
    }

    /// The route in `ip route` syntax (what `ip route add` takes back).
    public var description: String {
        var s = destination == "0.0.0.0/0" || destination == "::/0" ? "default" : destination
        if let g = gateway { s += " via \(g)" }
        s += " dev \(interface)"
        if table != Self.mainTable { s += " table \(table)" }
        if proto == 2 { s += " proto kernel" } else if proto == 4 { s += " proto static" } else if proto == 16 { s += " proto dhcp" }
        if scope == 253 { s += " scope link" }
        if let p = preferredSource { s += " src \(p)" }
        if metric != 0 { s += " metric \(metric)" }
        let locked = metrics[.lock] ?? 0
        for (m, v) in metrics.sorted(by: { $0.key < $1.key }) where m != .lock {
            s += " \(m.rawValue)" + (locked & (1 << UInt32(m.rtax)) != 0 ? " lock" : "") + " \(v)"
        }
        if nexthopFlags & NexthopFlags.onlink != 0 { s += " onlink" }
        if nexthopFlags & NexthopFlags.pervasive != 0 { s += " pervasive" }
        return s
    }
}

/// The result of one finished subprocess.
public struct CommandResult: Equatable, Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public init(status: Int32, stdout: String = "", stderr: String = "") {
        self.status = status; self.stdout = stdout; self.stderr = stderr
    }
}
