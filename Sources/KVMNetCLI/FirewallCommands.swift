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
            OptionSpec("--name", value: "NET", help: "The network (default: default)."),
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
            OptionSpec("--name", value: "NET", help: "Only this network."),
            OptionSpec("--json", help: "Print one JSON document on stdout."),
        ])

    public var name: NetworkName?
    public var json: Bool

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        name = a.value("--name") == nil ? nil : try a.network()
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
