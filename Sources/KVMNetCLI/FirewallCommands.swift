import Foundation
import KVMNetCore

/// `kvmnet forward add|del|list`
public struct ForwardCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "forward",
        abstract: "Add, remove or list port forwards into a nat network (PROTO:HOSTPORT:GUEST:PORT).",
        arguments: [ArgumentSpec("add|del|list", help: "What to do."),
                    ArgumentSpec("FORWARD", help: "tcp:8080:guest01:80 (GUEST: a name or an address)", optional: true)],
        options: [
            CommonOptions.network,
            OptionSpec("--json", help: "list: print one JSON document on stdout."),
        ])

    public var action: String
    public var forward: PortForward.Request?
    public var name: NetworkName
    public var json: Bool

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        action = a.positionals[0]
        name = try a.network()
        json = a.has("--json")
        switch action {
        case "add", "del":
            guard a.positionals.count == 2 else { throw Self.spec.usageError("missing FORWARD") }
            forward = try PortForward.Request.parse(a.positionals[1])
        case "list":
            if a.positionals.count > 1 { throw Self.spec.usageError("list takes no FORWARD") }
        default:
            throw Self.spec.usageError("unknown action '\(action)': use add, del or list")
        }
    }

    public var needsPrivilege: Bool { true }
    public var wantsJSON: Bool { json }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        let driver = NetworkDriver(env: env)
        switch action {
        case "add":
            let f = try driver.addForward(forward!, network: name)
            console.out("forwarding \(f.proto) port \(f.hostPort) of the host to \(f.address):\(f.port) (\(f.guest))\n")
        case "del":
            guard let f = try driver.removeForward(forward!, network: name) else {
                console.out("no forward of \(forward!.proto) port \(forward!.hostPort) on network \(name); nothing to do\n")
                return 0
            }
            console.out("removed the forward of \(f.proto) port \(f.hostPort) to \(f.address):\(f.port)\n")
        default:
            guard let record = try env.state.load(name) else { throw KVMNetError.failure("network \(name) is not up") }
            let forwards = record.forwards ?? []
            if json {
                struct Doc: Encodable {
                    struct F: Encodable { var proto: String; var hostPort: UInt16; var guest: String; var address: String; var port: UInt16 }
                    var schemaVersion = 1; var network: String; var forwards: [F]
                }
                try console.json(Doc(network: name.rawValue, forwards: forwards.map {
                    .init(proto: $0.proto.rawValue, hostPort: $0.hostPort, guest: $0.guest, address: $0.address.description, port: $0.port)
                }))
            } else if forwards.isEmpty {
                console.out("network \(name) forwards no ports\n")
            } else {
                for f in forwards { console.out("\(f.proto):\(f.hostPort) → \(f.address):\(f.port) (\(f.guest))\n") }
            }
        }
        return 0
    }
}

/// `kvmnet doctor`
public struct DoctorCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "doctor",
        abstract: "Check what on this host would break kvmnet's networks (exit 1 on an error finding).",
        options: [
            CommonOptions.onlyNetwork,
            CommonOptions.json,
        ])

    public var name: NetworkName?
    public var json: Bool

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        name = try a.optionalNetwork()
        json = a.has("--json")
    }

    public var needsPrivilege: Bool { true }
    public var wantsJSON: Bool { json }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        let results = try NetworkDriver(env: env).doctor(name)
        let failed = results.contains { $0.findings.contains { $0.severity == .error } }
        if json {
            struct Doc: Encodable {
                struct Net: Encodable { var network: String; var backend: String; var findings: [Finding] }
                var schemaVersion = 1; var ok: Bool; var networks: [Net]
            }
            try console.json(Doc(ok: !failed, networks: results.map { .init(network: $0.network, backend: $0.backend, findings: $0.findings) }))
        } else {
            for r in results {
                console.out("network \(r.network) (firewall \(r.backend)):\n")
                if r.findings.isEmpty { console.out("  ok: nothing on this host gets in its way\n") }
                for f in r.findings {
                    console.out("  \(f.severity.rawValue.uppercased()) \(f.check): \(f.message)\n      → \(f.action)\n")
                }
            }
        }
        return failed ? 1 : 0
    }
}

/// `kvmnet leases`
public struct LeasesCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "leases",
        abstract: "Show the DHCP leases of a network: address, MAC, name, static or dynamic, time left.",
        options: [
            CommonOptions.network,
            CommonOptions.json,
        ])

    public var name: NetworkName
    public var json: Bool

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        name = try a.network()
        json = a.has("--json")
    }

    public var needsPrivilege: Bool { true }
    public var wantsJSON: Bool { json }

    struct Lease: Encodable { var address: String; var mac: String; var name: String?; var kind: String; var secondsLeft: Int? }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        guard let record = try env.state.load(name) else { throw KVMNetError.failure("network \(name) is not up") }
        guard record.spec.servesDHCP, let g = env.guests else {
            throw KVMNetError.failure("network \(name) runs no DHCP server (\(record.spec.model)\(record.spec.dhcp == false ? ", --dhcp off" : ""))")
        }
        let folder = env.state.folder(for: name)
        let now = Int(Date().timeIntervalSince1970)
        var leases: [Lease] = []
        // dnsmasq's lease file: EXPIRY MAC ADDRESS NAME CLIENT-ID, one lease a line.
        for line in g.readText(folder + "/dnsmasq.leases").split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 4, let expiry = Int(f[0]) else { continue }
            let isStatic = (record.guests ?? []).contains { $0.spec.mac.description == f[1].lowercased() }
            leases.append(Lease(address: f[2], mac: f[1], name: f[3] == "*" ? nil : f[3], kind: isStatic ? "static" : "dynamic",
                                secondsLeft: expiry == 0 ? nil : max(0, expiry - now)))
        }
        for gr in record.guests ?? [] where !leases.contains(where: { $0.mac.lowercased() == gr.spec.mac.description }) {
            guard let a = gr.spec.address else { continue }
            leases.append(Lease(address: a.address.description, mac: gr.spec.mac.description, name: gr.spec.name, kind: "static", secondsLeft: nil))
        }
        leases.sort { (IPv4Address($0.address)?.value ?? 0) < (IPv4Address($1.address)?.value ?? 0) }
        if json {
            struct Doc: Encodable { var schemaVersion = 1; var network: String; var leases: [Lease] }
            try console.json(Doc(network: name.rawValue, leases: leases))
        } else if leases.isEmpty {
            console.out("network \(name) has no leases\n")
        } else {
            for l in leases {
                let left = l.secondsLeft.map { "\($0 / 60) min left" } ?? (l.kind == "static" ? "not leased yet" : "infinite")
                console.out("\(l.address.padding(toLength: 16, withPad: " ", startingAt: 0)) \(l.mac)  \((l.name ?? "-").padding(toLength: 12, withPad: " ", startingAt: 0)) \(l.kind.padding(toLength: 8, withPad: " ", startingAt: 0)) \(left)\n")
            }
        }
        return 0
    }
}
