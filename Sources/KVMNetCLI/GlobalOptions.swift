import KVMNetCore

/// The options before the command: `kvmnet [--netns NAME] [--state-dir DIR] COMMAND ...`.
public struct GlobalOptions: Equatable, Sendable {
    public var netns: String?
    public var stateDir: String?
    public var configDir: String?

    public static let options = [
        OptionSpec("--netns", value: "NAME", help: "Do all the work inside the network namespace /run/netns/NAME."),
        OptionSpec("--state-dir", value: "DIR", help: "Where network records live (env KVMNET_STATE_DIR; default /run/kvmnet)."),
        OptionSpec("--config-dir", value: "DIR", help: "Where definitions live (env KVMNET_CONFIG_DIR; default /etc/kvmnet)."),
    ]
}

/// A parsed command line, ready to run once the host is built.
public struct Invocation: Sendable {
    public enum Action: Sendable {
        case help(String)
        case version
        case command(any KVMNetCommand)
    }
    public var global: GlobalOptions
    public var action: Action

    /// Whether the command changes or reads what only root may (exit 77 otherwise).
    /// Checked by `main` before the namespace switch or any state-folder access.
    public var needsPrivilege: Bool {
        if global.netns != nil { return true }
        if case .command(let c) = action { return c.needsPrivilege }
        return false
    }
}

/// One subcommand: parsed and validated from its words, then run against a host.
public protocol KVMNetCommand: Sendable {
    static var spec: CommandSpec { get }
    init(_ args: ParsedArguments) throws
    var needsPrivilege: Bool { get }
    /// Runs the command. Returns the exit status (0, or 1 for `status` with drift).
    func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32
    /// With `--json`, errors too come as one JSON document on stdout.
    var wantsJSON: Bool { get }
}

extension KVMNetCommand {
    public var wantsJSON: Bool { false }
}

/// What `--json` commands print on stdout when they fail.
struct ErrorDocument: Encodable {
    struct Failure: Encodable { var message: String; var exitCode: Int32 }
    var schemaVersion = 1
    var error: Failure
}

/// A command's spec and how to build it from parsed words.
public struct CommandEntry: Sendable {
    public var spec: CommandSpec
    public var make: @Sendable (ParsedArguments) throws -> any KVMNetCommand

    public init<C: KVMNetCommand>(_ type: C.Type) {
        spec = C.spec
        make = { try C($0) }
    }
}

public enum KVMNetCLI {
    public static let version = "0.1.0"

    public static let commands: [CommandEntry] = [
        CommandEntry(UpCommand.self), CommandEntry(DownCommand.self), CommandEntry(StatusCommand.self),
        CommandEntry(ExecCommand.self), CommandEntry(ConsoleCommand.self), CommandEntry(VerifyCommand.self),
        CommandEntry(GuestBuildCommand.self), CommandEntry(ImageBuildCommand.self), CommandEntry(DefineCommand.self), CommandEntry(UndefineCommand.self),
        CommandEntry(HookCommand.self), CommandEntry(HooksCommand.self),
        CommandEntry(ForwardCommand.self), CommandEntry(DoctorCommand.self), CommandEntry(LeasesCommand.self),
    ]

    /// `kvmnet-ifup TAP` and `kvmnet-ifdown TAP` (links to kvmnet) mean `kvmnet hook ifup|ifdown TAP`.
    public static func rewrite(argv0: String, _ args: [String]) -> [String] {
        switch argv0.split(separator: "/").last.map(String.init) ?? "" {
        case "kvmnet-ifup": return ["hook", "ifup"] + args
        case "kvmnet-ifdown": return ["hook", "ifdown"] + args
        default: return args
        }
    }

    public static var rootHelp: String {
        var s = """
        OVERVIEW: kvmnet turns a Linux host into a KVM/QEMU host with one of four guest network
        models (isolated, routed, nat, bridged), and takes it down again leaving the host as it found it.

        USAGE: kvmnet [--netns NAME] [--state-dir DIR] [--config-dir DIR] COMMAND ...

        OPTIONS:

        """
        for o in GlobalOptions.options { s += row(o.name + (o.value.map { " \($0)" } ?? ""), o.help) }
        s += row("--version", "Show the version.")
        s += row("-h, --help", "Show help information.")
        s += "\nCOMMANDS:\n"
        for c in commands { s += row(c.spec.name, c.spec.abstract) }
        s += "\n  See 'kvmnet COMMAND --help' for detailed help.\n"
        return s
    }

    /// Parses the whole command line (without argv[0]). Pure: touches nothing.
    public static func parse(_ argv: [String], environment: [String: String] = [:]) throws -> Invocation {
        var global = GlobalOptions(netns: nil, stateDir: environment["KVMNET_STATE_DIR"].flatMap { $0.isEmpty ? nil : $0 },
                                   configDir: environment["KVMNET_CONFIG_DIR"].flatMap { $0.isEmpty ? nil : $0 })
        var i = 0
        while i < argv.count, argv[i].hasPrefix("-") {
            let word = argv[i]
            if word == "-h" || word == "--help" { return Invocation(global: global, action: .help(rootHelp)) }
            if word == "--version" { return Invocation(global: global, action: .version) }
            var name = word
            var value: String? = nil
            if let eq = word.firstIndex(of: "=") { name = String(word[..<eq]); value = String(word[word.index(after: eq)...]) }
            guard GlobalOptions.options.contains(where: { $0.name == name }) else {
                throw KVMNetError.usage("unknown option '\(name)'\nUsage: kvmnet [--netns NAME] [--state-dir DIR] [--config-dir DIR] COMMAND ...\n  See 'kvmnet --help'.")
            }
            if value == nil {
                i += 1
                guard i < argv.count else { throw KVMNetError.usage("option '\(name)' needs a value") }
                value = argv[i]
            }
            if name == "--netns" {
                let v = value!
                if v.isEmpty || v.contains("/") || v == "." || v == ".." {
                    throw KVMNetError.usage("invalid namespace name '\(v)': a name under /run/netns, without '/'")
                }
                global.netns = v
            } else if name == "--state-dir" {
                global.stateDir = value!
            } else {
                global.configDir = value!
            }
            i += 1
        }
        guard i < argv.count else { return Invocation(global: global, action: .help(rootHelp)) }
        let name = argv[i]
        guard let entry = commands.first(where: { $0.spec.name == name }) else {
            throw KVMNetError.usage("unknown command '\(name)': choose one of " + commands.map(\.spec.name).joined(separator: ", ")
                         + "\n  See 'kvmnet --help'.")
        }
        let spec = entry.spec
        let args: ParsedArguments = try spec.parse(Array(argv[(i + 1)...]))
        if args.help { return Invocation(global: global, action: .help(spec.help)) }
        let command = try entry.make(args)
        return Invocation(global: global, action: .command(command))
    }

    /// Runs a parsed invocation and returns the process exit status. Errors are printed here.
    public static func run(_ inv: Invocation, env: HostEnvironment, console: Console) -> Int32 {
        switch inv.action {
        case .help(let text): console.out(text); return 0
        case .version: console.out("kvmnet \(version)\n"); return 0
        case .command(let c):
            let message: String, code: Int32
            do {
                return try c.run(env, console, inv.global)
            } catch let e as KVMNetError {
                (message, code) = (e.description, e.exitCode)
            } catch let e as HostError {
                if case .permission = e { (message, code) = (e.description, 77) } else { (message, code) = (e.description, 1) }
            } catch {
                (message, code) = ("\(error)", 1)
            }
            return report(message, code: code, json: c.wantsJSON, console: console)
        }
    }

    /// A failure: one line on stderr and, with `json`, the error document on stdout, so that a
    /// script that asked for `--json` gets one document whatever failed (a usage error too).
    public static func report(_ message: String, code: Int32, json: Bool, console: Console) -> Int32 {
        console.err("kvmnet: error: \(message)\n")
        if json { try? console.json(ErrorDocument(error: .init(message: message, exitCode: code))) }
        return code
    }
}
