/// What the user asked `up` for, before defaults are filled in (nil = not given).
public struct UpRequest: Equatable, Sendable {
    public var model: NetworkModel
    public var name: NetworkName = .default
    public var bridge: InterfaceName?
    public var subnet: CIDRv4?
    public var address: IPv4Address?
    public var mtu: UInt32?
    public var uplink: InterfaceName?
    public var taps: Int?
    public var tapOwner: UInt32?
    public var firewall: FirewallChoice?
    /// nat: ports to forward to guests.
    public var forwards: [PortForward.Request] = []
    public var dhcp: Bool?
    public var dns: Bool?
    /// Accept an uplink whose address was leased by DHCP.
    public var force = false

    public init(model: NetworkModel) { self.model = model }
}

/// Fills in defaults (the seed's) and validates the request against what the host has.
///
/// Pure: reads only the observation it is given.
public enum SpecResolver {
    public static let defaultIsolatedSubnet = CIDRv4("10.0.1.0/24")!
    public static let defaultRoutedSubnet = CIDRv4("192.168.1.0/24")!
    public static let defaultRoutedAddress = IPv4Address("192.168.1.254")!

    /// Checks the options that do not depend on the host. Throws `.usage` (exit 64).
    public static func validate(_ r: UpRequest) throws(KVMNetError) {
        if let m = r.mtu, !(68...65535).contains(m) {
            throw .usage("invalid MTU \(m): use a value from 68 to 65535")
        }
        switch r.model {
        case .isolated:
            if r.address != nil && r.dhcp != true && r.dns != true {
                throw .usage("--address: an isolated network has no host address (unless it serves --dhcp on)")
            }
            if r.uplink != nil { throw .usage("--uplink is only for the bridged model") }
        case .routed, .nat:
            if r.uplink != nil { throw .usage("--uplink is only for the bridged model") }
        case .bridged:
            if r.subnet != nil { throw .usage("--subnet: a bridged network uses the uplink's LAN, not a subnet of its own") }
            if r.address != nil { throw .usage("--address: a bridged network takes over the uplink's addresses") }
            if r.mtu != nil { throw .usage("--mtu: a bridged network takes the uplink's MTU") }
        }
        if let s = r.subnet, s.prefixLength > 30 {
            throw .usage("subnet \(s) is too small: use a prefix of /30 or shorter")
        }
        if let s = r.subnet, let why = reserved(s) {
            throw .usage("subnet \(s) is \(why): choose a private range such as 192.168.1.0/24 or 10.0.1.0/24")
        }
        if let s = r.subnet, s.address != s.network {
            throw .usage("subnet \(s) has host bits set: did you mean \(s.subnet)?")
        }
        if let a = r.address {
            let subnet = r.subnet ?? (r.model == .isolated ? defaultIsolatedSubnet : defaultRoutedSubnet)
            if !subnet.contains(a) || a == subnet.network || a == subnet.broadcast {
                throw .usage("address \(a) is not a host address inside the subnet \(subnet)")
            }
        }
        if r.model == .bridged && (r.dhcp == true || r.dns == true) {
            throw .usage("a bridged network never runs DHCP or DNS: it would be a rogue server on the uplink's LAN")
        }
        if !r.forwards.isEmpty && r.model != .nat {
            throw .usage("--forward is for the nat model: " + (r.model == .routed ? "routed guests are reachable directly" : "\(r.model) guests are not behind the host's address"))
        }
        let ports = r.forwards.map { "\($0.proto)/\($0.hostPort)" }
        if let dup = ports.first(where: { p in ports.filter { $0 == p }.count > 1 }) {
            throw .usage("--forward: host port \(dup) is forwarded twice")
        }
        let maxTaps = r.model == .bridged ? maxBridgePorts - 1 : maxBridgePorts
        if let n = r.taps, n < 0 || n > maxTaps {
            throw .usage("--taps \(n): a Linux bridge holds at most \(maxBridgePorts) ports"
                         + (r.model == .bridged ? " (one is the uplink), so at most \(maxTaps) taps" : ""))
        }
    }

    /// Why a subnet cannot hold guests, or nil.
    static func reserved(_ s: CIDRv4) -> String? {
        let specials: [(String, String)] = [("0.0.0.0/8", "\"this network\" (0.0.0.0/8)"), ("127.0.0.0/8", "loopback"),
                                            ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved (240.0.0.0/4)"),
                                            ("169.254.0.0/16", "link-local")]
        if s.prefixLength < 8 { return "wider than a /8" }
        for (range, name) in specials where CIDRv4(range)!.overlaps(s) { return name }
        return nil
    }

    /// The complete spec for `r` on a host that looks like `links`/`routes`.
    /// Throws `.failure` (exit 1) for a bridged uplink that cannot be found.
    /// - Parameter backend: the firewall backend chosen for this host (`--firewall auto` resolved).
    public static func resolve(_ r: UpRequest, links: [LinkInfo], routes: [RouteInfo],
                               namespace: NamespaceIdentity, backend: FirewallBackend = .iptables) throws(KVMNetError) -> NetworkSpec {
        try validate(r)
        let bridge = r.bridge ?? r.name.defaultBridge
        var subnet: CIDRv4? = nil
        var hostAddress: CIDRv4? = nil
        var mtu = r.mtu ?? 1500
        var uplink: InterfaceName? = nil
        var mac = MACAddress.stable(prefix: [0x02, 0x6b, 0x76], seed: "bridge:\(namespace.inode):\(r.name)")
        switch r.model {
        case .isolated:
            let s = r.subnet ?? defaultIsolatedSubnet
            subnet = s
            // With --dhcp on, a host address that serves only DHCP and DNS (libvirt's isolated networks).
            if r.dhcp == true || r.dns == true { hostAddress = s.with(address: r.address ?? s.lastHost) }
        case .routed, .nat:
            let s = r.subnet ?? defaultRoutedSubnet
            subnet = s
            let a = r.address ?? (r.subnet == nil ? defaultRoutedAddress : s.lastHost)
            hostAddress = s.with(address: a)
        case .bridged:
            let name: String
            if let u = r.uplink {
                name = u.rawValue
            } else {
                guard let d = routes.first(where: { $0.family == .inet && $0.isDefault && $0.isMainTable }) else {
                    throw .failure("no interface holds an IPv4 default route: name the uplink with --uplink")
                }
                name = d.interface
            }
            guard let link = links.first(where: { $0.name == name }) else {
                throw .failure("uplink \(name) does not exist")
            }
            uplink = InterfaceName(trusted: name)
            mtu = link.mtu
            if let m = link.mac { mac = m }
        }
        var spec = NetworkSpec(name: r.name, model: r.model, bridge: bridge, subnet: subnet, hostAddress: hostAddress,
                               mtu: mtu, uplink: uplink, bridgeMAC: mac, taps: r.taps ?? 0,
                               tapOwner: r.tapOwner ?? 0, firewall: backend)
        spec.dhcp = r.dhcp
        spec.dns = r.dns
        return spec
    }

    /// Options given explicitly that differ from the recorded spec, as "--option value" strings.
    /// `up` again with such options is refused: the user must run `down` first.
    public static func conflicts(_ r: UpRequest, with spec: NetworkSpec) -> [String] {
        var out: [String] = []
        if r.model != spec.model { out.append("model \(r.model) (it is \(spec.model))") }
        if let b = r.bridge, b != spec.bridge { out.append("--bridge \(b) (it is \(spec.bridge))") }
        if let s = r.subnet, s != spec.subnet { out.append("--subnet \(s) (it is \(spec.subnet.map { "\($0)" } ?? "none"))") }
        if let a = r.address, a != spec.hostAddress?.address {
            out.append("--address \(a) (it is \(spec.hostAddress.map { "\($0.address)" } ?? "none"))")
        }
        if let m = r.mtu, m != spec.mtu { out.append("--mtu \(m) (it is \(spec.mtu))") }
        if let u = r.uplink, u != spec.uplink { out.append("--uplink \(u) (it is \(spec.uplink.map { "\($0)" } ?? "none"))") }
        if let t = r.taps, t != spec.taps { out.append("--taps \(t) (it is \(spec.taps))") }
        if let o = r.tapOwner, o != spec.tapOwner { out.append("--tap-owner \(o) (it is \(spec.tapOwner))") }
        if let f = r.firewall, f != .auto, f.rawValue != spec.firewall.rawValue { out.append("--firewall \(f) (it is \(spec.firewall))") }
        if let d = r.dhcp, d != spec.servesDHCP { out.append("--dhcp \(d ? "on" : "off") (it is \(spec.servesDHCP ? "on" : "off"))") }
        if let d = r.dns, d != spec.servesDNS { out.append("--dns \(d ? "on" : "off") (it is \(spec.servesDNS ? "on" : "off"))") }
        return out
    }
}
