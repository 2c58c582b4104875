import Foundation
import KVMNetCore

/// `kvmnet exec GUEST -- COMMAND...`
public struct ExecCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "exec",
        abstract: "Run a command in a guest through its serial console; exit with its status (125: could not run it).",
        arguments: [ArgumentSpec("GUEST", help: "guest01, guest02, … (not with --console)", optional: true)],
        options: [
            CommonOptions.network,
            OptionSpec("--console", value: "SOCKET", help: "A guest kvmnet did not launch: its serial console's unix socket."),
            OptionSpec("--timeout", value: "SECONDS", help: "How long the command may run (default 30)."),
        ],
        trailing: "COMMAND...")

    public var name: NetworkName
    public var guest: String?
    public var socket: String?
    public var command: [String]
    public var timeout: Int

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        name = try a.network()
        guest = a.positionals.first
        socket = a.value("--console")
        command = a.trailing
        timeout = try a.int("--timeout", in: 1...86400) ?? 30
        if command.isEmpty { throw Self.spec.usageError("missing COMMAND after --") }
        if (guest == nil) == (socket == nil) { throw Self.spec.usageError("name a GUEST, or give --console SOCKET") }
    }

    public var needsPrivilege: Bool { socket == nil }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        let line = command.count == 1 ? command[0] : CommandFailure.shellEscape(command)
        do {
            guard let g = env.guests else { throw KVMNetError.failure("guests cannot run here") }
            if let path = socket {
                let result = try g.exec(console: path, command: line, timeout: Double(timeout))
                console.out(result.output)
                return result.status
            }
            let guest = self.guest!
            guard let record = try env.state.load(name) else { throw KVMNetError.failure("network \(name) is not up") }
            guard let r = record.guests?.first(where: { $0.spec.name == guest }) else {
                let known = (record.guests ?? []).map(\.spec.name)
                throw KVMNetError.failure("no guest \(guest) on network \(name)" + (known.isEmpty ? "" : "; it has " + known.joined(separator: ", ")))
            }
            guard let pid = r.pid, g.startTime(of: pid) == r.startTime else {
                throw KVMNetError.failure("\(guest) is not running")
            }
            let result = try g.exec(console: GuestPaths(folder: env.state.folder(for: name)).console(guest),
                                    command: line, timeout: Double(timeout))
            console.out(result.output)
            return result.status
        } catch let e as KVMNetError {
            throw KVMNetError.status(125, e.description)
        } catch {
            throw KVMNetError.status(125, "\(error)")
        }
    }
}

/// `kvmnet console GUEST`
public struct ConsoleCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "console",
        abstract: "Attach to a guest's serial console (Ctrl-] leaves).",
        arguments: [ArgumentSpec("GUEST", help: "guest01, guest02, …")],
        options: [CommonOptions.network])

    public var name: NetworkName
    public var guest: String

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        name = try a.network()
        guest = a.positionals[0]
    }

    public var needsPrivilege: Bool { true }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        guard let g = env.guests else { throw KVMNetError.failure("guests cannot run here") }
        guard let record = try env.state.load(name), record.guests?.contains(where: { $0.spec.name == guest }) == true else {
            throw KVMNetError.failure("no guest \(guest) on network \(name)")
        }
        console.err("kvmnet: connected to \(guest)'s console; Ctrl-] leaves\n")
        try g.attach(console: GuestPaths(folder: env.state.folder(for: name)).console(guest))
        console.err("\nkvmnet: left \(guest)'s console\n")
        return 0
    }
}

/// `kvmnet verify`
public struct VerifyCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "verify",
        abstract: "Run the seed's communication tests from the guests and the host; exit 0 only when all match the model.",
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

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        let driver = NetworkDriver(env: env)
        let model = try env.state.load(name)?.spec.model
        let (checks, notes) = try driver.verify(name)
        let ok = checks.allSatisfy(\.ok)
        if json {
            try console.json(VerifyDocument(network: name.rawValue, model: model?.rawValue ?? "", ok: ok,
                                            checks: checks.map(VerifyDocument.Check.init), notes: notes))
        } else {
            console.out(renderVerify(checks, model: model))
            for n in notes { console.out("note: \(n)\n") }
            console.out(ok ? "verify: every check matches the \(model?.rawValue ?? "") model\n"
                           : "verify: \(checks.filter { !$0.ok }.count) check(s) do not match the \(model?.rawValue ?? "") model\n")
        }
        return ok ? 0 : 1
    }
}

func renderVerify(_ checks: [VerifyCheck], model: NetworkModel?) -> String {
    let w = max(30, (checks.map { "\($0.check) (\($0.target))".count }.max() ?? 0) + 2)
    var s = "CHECK".padding(toLength: w, withPad: " ", startingAt: 0) + "EXPECTED  OBSERVED  RESULT\n"
    for c in checks {
        let obs = c.observed.map { $0 ? "yes" : "no" } ?? "error"
        let exp = c.expected == .report ? "(report)" : c.expected.rawValue
        s += "\(c.check) (\(c.target))".padding(toLength: w, withPad: " ", startingAt: 0)
            + exp.padding(toLength: 10, withPad: " ", startingAt: 0) + obs.padding(toLength: 10, withPad: " ", startingAt: 0)
            + (c.expected == .report ? "INFO" : c.ok ? "OK" : "FAIL") + "\n"
    }
    return s
}

struct VerifyDocument: Encodable {
    struct Check: Encodable {
        var check: String, from: String, target: String, expected: String, observed: Bool?, ok: Bool
        init(_ c: VerifyCheck) {
            check = c.check; from = c.from; target = c.target; expected = c.expected.rawValue; observed = c.observed; ok = c.ok
        }
    }
    var schemaVersion = 1
    var network: String
    var model: String
    var ok: Bool
    var checks: [Check]
    var notes: [String]
}

/// `kvmnet guest build`
public struct GuestBuildCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "guest",
        abstract: "Build (or find, cached) the default guest: Debian's cloud kernel and a busybox initramfs.",
        arguments: [ArgumentSpec("build", help: "The only action: build the default guest.")],
        options: [],
        discussion: "The guest lives in KVMNET_GUEST_DIR, else /var/lib/kvmnet/guest, in a folder keyed by its inputs.")

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        guard a.positionals[0] == "build" else { throw Self.spec.usageError("unknown action '\(a.positionals[0])': the only one is build") }
    }

    public var needsPrivilege: Bool { false }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        guard let g = env.guests else { throw KVMNetError.failure("guests cannot run here") }
        let files = try g.defaultGuest { console.err("kvmnet: \($0)\n") }
        console.out("kernel \(files.kernel)\ninitrd \(files.initrd)\n")
        return 0
    }
}

/// `kvmnet hook ifup|ifdown TAP` — what qemu's script=/downscript= run.
public struct HookCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "hook",
        abstract: "qemu's tap hook: attach (ifup) or detach (ifdown) a tap qemu created.",
        arguments: [ArgumentSpec("ifup|ifdown", help: "What to do."), ArgumentSpec("TAP", help: "The tap qemu created.")],
        options: [OptionSpec("--name", value: "NET", help: "The network (default: env KVMNET_NETWORK, else default).")])

    public var action: String
    public var tap: InterfaceName
    public var name: NetworkName?

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        action = a.positionals[0]
        guard action == "ifup" || action == "ifdown" else { throw Self.spec.usageError("unknown hook '\(action)': use ifup or ifdown") }
        tap = try InterfaceName(a.positionals[1])
        name = try a.optionalNetwork()
    }

    public var needsPrivilege: Bool { action == "ifup" }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        let net = try name ?? ProcessInfo.processInfo.environment["KVMNET_NETWORK"].map { v throws(KVMNetError) in try NetworkName(v) } ?? .default
        let driver = NetworkDriver(env: env)
        if action == "ifup" { try driver.hookUp(tap: tap.rawValue, network: net) }
        else { try driver.hookDown(tap: tap.rawValue, network: net) }
        return 0
    }
}

/// `kvmnet image build [--out FILE]`
public struct ImageBuildCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "image",
        abstract: "Build a small bootable qcow2 disk from the default guest (for --image).",
        arguments: [ArgumentSpec("build", help: "The only action: build the disk.")],
        options: [OptionSpec("--out", value: "FILE", help: "Where to write it (default: ./kvmnet-guest.qcow2).")],
        discussion: """
        The disk holds the default guest's kernel and initramfs behind syslinux; booted with
        `kvmnet up MODEL --guests N --image FILE`, each guest reads its name and address from its
        NoCloud seed, or asks DHCP (routed and nat).
        """)

    public var out: String

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        guard a.positionals[0] == "build" else { throw Self.spec.usageError("unknown action '\(a.positionals[0])': the only one is build") }
        out = absolute(a.value("--out") ?? "kvmnet-guest.qcow2")
    }

    public var needsPrivilege: Bool { false }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        guard let g = env.guests else { throw KVMNetError.failure("guests cannot run here") }
        let files = try g.defaultGuest { console.err("kvmnet: \($0)\n") }
        console.out(try g.buildImage(kernel: files.kernel, initrd: files.initrd, out: out) + "\n")
        return 0
    }
}
