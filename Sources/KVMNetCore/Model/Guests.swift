/// How guests boot: the default guest's kernel and initramfs, or a disk image.
public enum GuestBoot: Codable, Equatable, Sendable {
    case kernel(kernel: String, initrd: String)
    case image(String)
}

/// What `up --guests N` asked for.
public struct GuestRequest: Equatable, Sendable {
    public var count: Int
    public var boot: GuestBoot?
    public var memoryMiB: Int = 128
    public var cpus: Int = 1
    public var accel: Accel = .auto
    /// bridged: the guests' addresses on the uplink's LAN, in order.
    public var addresses: [IPv4Address] = []
    public var gateway: IPv4Address?
    /// SSH public keys for disk-image guests (`--ssh-key FILE`, its lines).
    public var sshKeys: [String] = []
    /// How long `up` waits for the guests to boot; 0: not at all; nil: the default
    /// (180 s for the default guest, 90 s and only a notice for disk images).
    public var bootWait: Int?

    public init(count: Int) { self.count = count }

    public enum Accel: String, Codable, Sendable { case auto, kvm, tcg }

    /// Parses `--guest-ip`: a comma-separated list, or FIRST-LAST.
    public static func parseAddresses(_ text: String) throws(KVMNetError) -> [IPv4Address] {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        if parts.count == 2, let a = IPv4Address(String(parts[0])), let b = IPv4Address(String(parts[1])) {
            guard a <= b else { throw .usage("invalid --guest-ip range '\(text)': FIRST must not be above LAST") }
            guard b.value - a.value < 4096 else { throw .usage("invalid --guest-ip range '\(text)': at most 4096 addresses") }
            return (a.value...b.value).map(IPv4Address.init)
        }
        var out: [IPv4Address] = []
        for p in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let a = IPv4Address(String(p)) else {
                throw .usage("invalid --guest-ip '\(text)': expected a list such as 10.241.96.90,10.241.96.91 or a range FIRST-LAST")
            }
            out.append(a)
        }
        return out
    }
}

/// One guest as launched: its name, MAC, tap and address.
public struct GuestSpec: Codable, Equatable, Sendable {
    /// guest01, guest02, … (the seed's names).
    public var name: String
    public var index: Int
    public var mac: MACAddress
    public var tap: String
    public var address: CIDRv4?
    public var gateway: IPv4Address?
    public var mtu: UInt32
}

/// A launched guest: its spec and the process that runs it.
public struct GuestRecord: Codable, Equatable, Sendable {
    public var spec: GuestSpec
    public var pid: Int32?
    /// The process's start time (clock ticks since boot), so a reused pid is never signalled.
    public var startTime: UInt64?
    public var accel: String

    public init(spec: GuestSpec, pid: Int32? = nil, startTime: UInt64? = nil, accel: String) {
        self.spec = spec; self.pid = pid; self.startTime = startTime; self.accel = accel
    }
}

public enum GuestPlanner {
    public static func guestName(_ i: Int) -> String { i < 10 ? "guest0\(i)" : "guest\(i)" }

    /// A distinct, stable, locally administered unicast MAC per network and guest:
    /// the same again after `down` and `up`.
    public static func mac(network: NetworkName, namespace: NamespaceIdentity, index: Int) -> MACAddress {
        var m = MACAddress.stable(prefix: [0x52, 0x54, 0x00], seed: "guest:\(namespace.name ?? (namespace.isRoot ? "root" : "\(namespace.inode)")):\(network)")
        m.bytes[5] = UInt8(truncatingIfNeeded: index)
        m.bytes[4] = m.bytes[4] &+ UInt8(truncatingIfNeeded: index >> 8)
        return m
    }

    /// The guests of a network: addresses as in the seed (isolated 10.0.1.N/24; routed and nat
    /// 192.168.1.N/24 via the bridge address; bridged from `--guest-ip`, via the LAN's gateway).
    /// - Parameters:
    ///   - lan: bridged: the uplink's address with its prefix (the LAN the guests join).
    ///   - hostAddresses: every IPv4 address of the host, which no guest may take.
    public static func guests(_ req: GuestRequest, spec: NetworkSpec, namespace: NamespaceIdentity,
                              lanGateway: IPv4Address?, lan: CIDRv4?,
                              hostAddresses: Set<IPv4Address> = []) throws(KVMNetError) -> [GuestSpec] {
        guard req.count > 0 else { return [] }
        if req.count > maxBridgePorts - spec.taps - (spec.model == .bridged ? 1 : 0) {
            throw .usage("--guests \(req.count): a Linux bridge holds at most \(maxBridgePorts) ports")
        }
        var addrs: [CIDRv4] = []
        var gateway: IPv4Address? = nil
        switch spec.model {
        case .isolated, .routed, .nat:
            let subnet = spec.subnet!.subnet
            var n = subnet.network.value + 1
            while addrs.count < req.count {
                guard n <= subnet.lastHost.value else {
                    throw .usage("subnet \(subnet) has no room for \(req.count) guests")
                }
                if n != spec.hostAddress?.address.value { addrs.append(subnet.with(address: IPv4Address(n))) }
                n += 1
            }
            gateway = spec.hostAddress?.address
            if !req.addresses.isEmpty { throw .usage("--guest-ip is for bridged networks; the \(spec.model) model numbers guests in \(subnet)") }
        case .bridged:
            guard req.addresses.count >= req.count else {
                throw .usage("bridged guests live on the uplink's LAN: give \(req.count) address(es) with --guest-ip LIST or FIRST-LAST")
            }
            guard let lan else { throw .failure("the uplink has no IPv4 address: cannot tell the guests' LAN") }
            addrs = req.addresses.prefix(req.count).map { lan.with(address: $0) }
            for a in addrs {
                if !lan.contains(a.address) || a.address == lan.network || a.address == lan.broadcast {
                    throw .usage("--guest-ip \(a.address) is not a host address on the uplink's LAN \(lan.subnet)")
                }
                if hostAddresses.contains(a.address) { throw .usage("--guest-ip \(a.address) is an address of this host") }
                if a.address == req.gateway ?? lanGateway { throw .usage("--guest-ip \(a.address) is the LAN's gateway") }
            }
            gateway = req.gateway ?? lanGateway
        }
        if let g = req.gateway, spec.model != .bridged { gateway = g }
        return (1...req.count).map { i in
            GuestSpec(name: guestName(i), index: i, mac: mac(network: spec.name, namespace: namespace, index: i),
                      tap: spec.name.tapName(spec.taps + i).rawValue, address: addrs[i - 1],
                      gateway: spec.model == .isolated ? nil : gateway, mtu: spec.mtu)
        }
    }
}
