import KVMNetCore

/// `up --dry-run --json`.
struct PlanDocument: Encodable {
    struct Step: Encodable { var summary: String; var command: String }
    var schemaVersion = 1
    var dryRun = true
    var network: String
    var model: String
    var steps: [Step]
}

/// `status --json` and `up --json`.
struct StatusDocument: Encodable {
    var schemaVersion = 1
    var networks: [NetworkDocument]
    /// For `up`: created, repaired or unchanged.
    var action: String?
}

struct NetworkDocument: Encodable {
    struct Sysctl: Encodable { var key: String; var value: String; var previous: String }
    struct Firewall: Encodable { var backend: String; var chains: [String] }
    var name: String
    var model: String
    var namespace: String
    var bridge: String
    var bridgeMAC: String
    var mtu: UInt32
    var subnet: String?
    var uplink: String?
    var addresses: [String]
    var ports: [String]
    var taps: [String]
    var firewall: Firewall?
    var sysctls: [Sysctl]
    var complete: Bool
    var drift: [String]
    var guests: [Guest]
    var forwards: [Forward]
    var firewallReason: String?
    var hookTaps: [HookTap]
    var lazy: Bool

    struct HookTap: Encodable { var name: String; var present: Bool }
    struct Forward: Encodable { var proto: String; var hostPort: UInt16; var guest: String; var address: String; var port: UInt16 }

    struct Guest: Encodable {
        var name: String, pid: Int32?, running: Bool, mac: String, tap: String, address: String?, gateway: String?, accel: String
    }

    init(_ s: NetworkStatus) {
        let spec = s.record.spec
        name = spec.name.rawValue
        model = spec.model.rawValue
        namespace = s.record.namespace.name ?? (s.record.namespace.isRoot ? "root" : "inode:\(s.record.namespace.inode)")
        bridge = spec.bridge.rawValue
        bridgeMAC = spec.bridgeMAC.description
        mtu = spec.mtu
        subnet = spec.subnet?.description
        uplink = spec.uplink?.rawValue
        addresses = s.addresses.map { "\($0.address)/\($0.prefixLength)" }
        ports = s.ports
        taps = spec.tapNames.map(\.rawValue)
        firewall = s.record.journal.compactMap { e -> Firewall? in
            if case .firewall(let f) = e { return Firewall(backend: f.backend.rawValue, chains: f.chains) } else { return nil }
        }.first
        sysctls = s.record.journal.compactMap { e -> Sysctl? in
            if case .changedSysctl(let k, let p, let v) = e { return Sysctl(key: k, value: v, previous: p) } else { return nil }
        }
        complete = s.record.complete
        drift = s.drift
        forwards = (s.record.forwards ?? []).map {
            Forward(proto: $0.proto.rawValue, hostPort: $0.hostPort, guest: $0.guest, address: $0.address.description, port: $0.port)
        }
        firewallReason = s.record.firewallReason
        hookTaps = s.hookTaps.map { HookTap(name: $0.0, present: $0.1) }
        lazy = s.record.lazy ?? false
        guests = s.guests.map { g, alive in
            Guest(name: g.spec.name, pid: g.pid, running: alive, mac: g.spec.mac.description, tap: g.spec.tap,
                  address: g.spec.address?.description, gateway: g.spec.gateway?.description, accel: g.accel)
        }
    }
}
