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
}

/// One route of the main table, as `ip route` shows it.
public struct RouteInfo: Hashable, Codable, Sendable, CustomStringConvertible {
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

    public init(family: AddressFamily = .inet, destination: String, gateway: String? = nil, interface: String,
                metric: UInt32 = 0, proto: UInt8 = 3, scope: UInt8 = 0, preferredSource: String? = nil) {
        self.family = family; self.destination = destination; self.gateway = gateway
        self.interface = interface; self.metric = metric; self.proto = proto; self.scope = scope
        self.preferredSource = preferredSource
    }

    public var isDefault: Bool { destination == "0.0.0.0/0" || destination == "::/0" }
    public var ipv4Destination: CIDRv4? { family == .inet ? CIDRv4(destination) : nil }

    public func on(_ interface: String) -> RouteInfo {
        var r = self
        r.interface = interface
        return r
    }

    public var description: String {
        var s = destination == "0.0.0.0/0" || destination == "::/0" ? "default" : destination
        if let g = gateway { s += " via \(g)" }
        s += " dev \(interface)"
        if proto == 2 { s += " proto kernel" } else if proto == 4 { s += " proto static" } else if proto == 16 { s += " proto dhcp" }
        if scope == 253 { s += " scope link" }
        if let p = preferredSource { s += " src \(p)" }
        if metric != 0 { s += " metric \(metric)" }
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
