/// A port forward into a nat network: `PROTO:HOSTPORT:GUEST:PORT`.
public struct PortForward: Codable, Hashable, Sendable, CustomStringConvertible {
    public enum Proto: String, Codable, Sendable, CaseIterable { case tcp, udp }
    public var proto: Proto
    public var hostPort: UInt16
    /// The guest as the user named it (guest01, or an address).
    public var guest: String
    public var address: IPv4Address
    public var port: UInt16

    public init(proto: Proto, hostPort: UInt16, guest: String, address: IPv4Address, port: UInt16) {
        self.proto = proto; self.hostPort = hostPort; self.guest = guest; self.address = address; self.port = port
    }

    /// The user's words, before the guest is resolved.
    public struct Request: Equatable, Sendable, CustomStringConvertible {
        public var proto: Proto
        public var hostPort: UInt16
        public var guest: String
        public var port: UInt16
        public var description: String { "\(proto):\(hostPort):\(guest):\(port)" }

        /// Parses `tcp:8080:guest01:80`; errors name the value (exit 64).
        public static func parse(_ text: String) throws(KVMNetError) -> Request {
            let f = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            func bad(_ why: String) -> KVMNetError {
                .usage("invalid forward '\(text)': \(why); expected PROTO:HOSTPORT:GUEST:PORT such as tcp:8080:guest01:80")
            }
            guard f.count == 4 else { throw bad("four parts separated by ':'") }
            guard let p = Proto(rawValue: f[0]) else { throw bad("the protocol is tcp or udp") }
            guard let hp = UInt16(f[1]), hp > 0 else { throw bad("the host port is 1–65535") }
            guard let gp = UInt16(f[3]), gp > 0 else { throw bad("the guest port is 1–65535") }
            guard !f[2].isEmpty else { throw bad("the guest is a name (guest01) or an address") }
            return Request(proto: p, hostPort: hp, guest: f[2], port: gp)
        }
    }

    /// Resolves the guest against the network's guests (by name) or its subnet (by address).
    public static func resolve(_ r: Request, spec: NetworkSpec, guests: [GuestSpec]) throws(KVMNetError) -> PortForward {
        guard spec.model == .nat else {
            throw .usage("port forwarding is for the nat model (\(spec.name) is \(spec.model)): "
                + (spec.model == .routed ? "routed guests are reachable directly" : "its guests are not behind the host's address"))
        }
        let address: IPv4Address
        if let g = guests.first(where: { $0.name == r.guest }), let a = g.address {
            address = a.address
        } else if let a = IPv4Address(r.guest) {
            guard let subnet = spec.subnet, subnet.contains(a), a != spec.hostAddress?.address else {
                throw .usage("forward \(r): \(a) is not a guest address in \(spec.subnet.map { "\($0)" } ?? "the network")")
            }
            address = a
        } else {
            throw .usage("forward \(r): no guest \(r.guest) on network \(spec.name)"
                + (guests.isEmpty ? "" : " (it has " + guests.map(\.name).joined(separator: ", ") + ")"))
        }
        return PortForward(proto: r.proto, hostPort: r.hostPort, guest: r.guest, address: address, port: r.port)
    }

    public var description: String { "\(proto):\(hostPort):\(guest):\(port)" }
}
