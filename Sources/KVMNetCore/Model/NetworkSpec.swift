/// The four guest network models of the seed document.
public enum NetworkModel: String, Codable, CaseIterable, Sendable, CustomStringConvertible {
    /// Guests share a bridge with no host address: guest↔guest only.
    case isolated
    /// The bridge has a host address and the host forwards without address translation.
    case routed
    /// As routed, and the subnet is masqueraded behind the host's addresses on the way out.
    case nat
    /// The uplink NIC is a port of the bridge; guests are peers of the host on its LAN.
    case bridged

    public var description: String { rawValue }

    /// Parses a model name; the error lists the four.
    public static func parse(_ text: String) throws(KVMNetError) -> NetworkModel {
        guard let m = NetworkModel(rawValue: text) else {
            throw .usage("unknown model '\(text)': choose one of isolated, routed, nat, bridged")
        }
        return m
    }

    /// Whether the host routes for this model (`net.ipv4.ip_forward=1`).
    public var needsForwarding: Bool { self == .routed || self == .nat }
    /// Whether the bridge carries a host address on the guests' subnet.
    public var hasHostAddress: Bool { self == .routed || self == .nat }
}

public enum FirewallBackend: String, Codable, Sendable, CaseIterable {
    case iptables, nftables
}

/// What `--firewall` asked for.
public enum FirewallChoice: String, Codable, Sendable, CaseIterable {
    case auto, iptables, nftables
}

/// A network as `up` resolved it: every default filled in, every value validated.
public struct NetworkSpec: Codable, Equatable, Sendable {
    public var name: NetworkName
    public var model: NetworkModel
    public var bridge: InterfaceName
    /// The guests' subnet (nil for bridged: the guests live on the uplink's LAN).
    public var subnet: CIDRv4?
    /// The bridge's own address with the subnet's prefix (routed and nat).
    public var hostAddress: CIDRv4?
    public var mtu: UInt32
    /// Bridged only: the NIC enslaved to the bridge.
    public var uplink: InterfaceName?
    /// The MAC the bridge is created with (bridged: the uplink's).
    public var bridgeMAC: MACAddress
    /// Persistent taps to pre-create, named as guest taps are.
    public var taps: Int
    public var tapOwner: UInt32
    public var firewall: FirewallBackend
    /// `--dhcp on|off`, `--dns on|off`; nil: the model's default (see `servesDHCP`).
    public var dhcp: Bool?
    public var dns: Bool?

    public init(name: NetworkName, model: NetworkModel, bridge: InterfaceName, subnet: CIDRv4?,
                hostAddress: CIDRv4?, mtu: UInt32, uplink: InterfaceName?, bridgeMAC: MACAddress,
                taps: Int, tapOwner: UInt32, firewall: FirewallBackend) {
        self.name = name; self.model = model; self.bridge = bridge; self.subnet = subnet
        self.hostAddress = hostAddress; self.mtu = mtu; self.uplink = uplink; self.bridgeMAC = bridgeMAC
        self.taps = taps; self.tapOwner = tapOwner; self.firewall = firewall
    }

    public var tapNames: [InterfaceName] { taps == 0 ? [] : (1...taps).map { name.tapName($0) } }
}

/// A Linux bridge holds at most this many ports (the next one fails with EXFULL).
public let maxBridgePorts = 1023
