import Foundation
import KVMNetCore

/// `kvmnet define MODEL [network options]`
public struct DefineCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "define",
        abstract: "Save a network definition (and stable qemu hooks for it); change nothing else.",
        arguments: [ArgumentSpec("MODEL", help: "isolated, routed, nat or bridged.")],
        options: networkOptions,
        discussion: """
        The definition is <config-dir>/NET.json; its hooks <config-dir>/hooks/NET/qemu-ifup and
        qemu-ifdown bring the network up on the first ifup and down after the last ifdown.
        """)

    public var definition: NetworkDefinition
    public var name: NetworkName

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        definition = try a.definition(model: try NetworkModel.parse(a.positionals[0]))
        name = try a.network()
        definition.name = name.rawValue
    }

    public var needsPrivilege: Bool { false }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        guard let store = env.definitions else { throw KVMNetError.failure("no config folder") }
        if let o = definition.tapOwner, env.userID(o) == nil { throw KVMNetError.usage("unknown user '\(o)' for --tap-owner") }
        try store.save(definition, as: name)
        let hooks = try NetworkDriver(env: env).writeDefinedHooks(name)
        console.out("defined network \(name) (\(definition.model)) in \(store.directory)/\(name).json\n")
        console.out("qemu hooks: script=\(hooks.ifup),downscript=\(hooks.ifdown)\n")
        return 0
    }
}

/// `kvmnet undefine [--name NET]`
public struct UndefineCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "undefine",
        abstract: "Remove a network definition and its hooks (a network that is up stays up).",
        options: [CommonOptions.network])

    public var name: NetworkName

    public init(_ a: ParsedArguments) throws(KVMNetError) { name = try a.network() }

    public var needsPrivilege: Bool { false }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        guard let store = env.definitions else { throw KVMNetError.failure("no config folder") }
        if try store.remove(name) {
            console.out("network \(name) is no longer defined\n")
        } else {
            console.out("network \(name) is not defined; nothing to do\n")
        }
        return 0
    }
}

/// `kvmnet hooks [--name NET] [--user]`
public struct HooksCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "hooks",
        abstract: "Print the network's qemu hooks and a ready -netdev fragment.",
        options: [
            CommonOptions.network,
            OptionSpec("--user", help: "The form for an unprivileged qemu on taps made by `up --taps N --tap-owner USER`."),
        ])

    public var name: NetworkName
    public var user: Bool

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        name = try a.network()
        user = a.has("--user")
    }

    public var needsPrivilege: Bool { false }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        let record = try? env.state.load(name)
        let defined = try env.definitions?.load(name) != nil
        let mac = GuestPlanner.mac(network: name, namespace: env.namespace, index: 1)
        if user {
            guard let r = record, r.spec.taps > 0 else {
                throw KVMNetError.failure("network \(name) has no pre-made taps: bring it up with `kvmnet up MODEL --taps N --tap-owner USER`")
            }
            let tap = r.spec.tapNames[0]
            console.out("# taps \(r.spec.tapNames.map(\.rawValue).joined(separator: " ")) are owned by uid \(r.spec.tapOwner); that user's qemu:\n")
            console.out("-netdev tap,id=net0,ifname=\(tap),script=no,downscript=no -device virtio-net-pci,netdev=net0,mac=\(mac)\n")
            if let note = tunNote() { console.err("kvmnet: \(note)\n") }
            return 0
        }
        let paths: (ifup: String, ifdown: String)
        if defined {
            let folder = env.definitions!.hooksFolder(name)
            paths = (folder + "/qemu-ifup", folder + "/qemu-ifdown")
        } else if record != nil {
            let p = GuestPaths(folder: env.state.folder(for: name))
            paths = (p.ifup, p.ifdown)
        } else {
            throw KVMNetError.failure("network \(name) is neither defined nor up: `kvmnet define MODEL --name \(name)` writes stable hooks")
        }
        console.out("ifup   \(paths.ifup)\nifdown \(paths.ifdown)\n")
        console.out("-netdev tap,id=net0,ifname=TAP,script=\(paths.ifup),downscript=\(paths.ifdown) -device virtio-net-pci,netdev=net0,mac=\(mac)\n")
        console.out("# TAP: a name of your choice, at most 15 bytes; give each guest its own TAP and MAC\n")
        return 0
    }

    /// qemu opens /dev/net/tun itself: an unprivileged qemu needs it world-usable.
    func tunNote() -> String? {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: "/dev/net/tun"),
              let mode = attrs[.posixPermissions] as? Int else { return "/dev/net/tun is missing" }
        return mode & 0o006 == 0o006 ? nil
            : "/dev/net/tun is mode \(String(mode, radix: 8)), not usable by other users: an unprivileged qemu cannot open its tap (most distributions make it 0666: chmod 0666 /dev/net/tun)"
    }
}
