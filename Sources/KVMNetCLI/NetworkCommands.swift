import Foundation
import KVMNetCore

/// The options that describe a network: shared by `up` and `define`, and the keys of a definition file.
let networkOptions: [OptionSpec] = [
    OptionSpec("--name", value: "NET", help: "Network name, [a-z0-9][a-z0-9-]{0,11} (default: default)."),
    OptionSpec("--bridge", value: "IFNAME", help: "Bridge name (default: br-in for 'default', kb-NET otherwise)."),
    OptionSpec("--subnet", value: "CIDR", help: "Guest subnet (isolated: 10.0.1.0/24; routed, nat: 192.168.1.0/24)."),
    OptionSpec("--address", value: "IP", help: "Bridge address inside the subnet (default: 192.168.1.254, or the subnet's last host)."),
    OptionSpec("--mtu", value: "N", help: "Bridge and tap MTU (default 1500; bridged: the uplink's)."),
    OptionSpec("--uplink", value: "IFNAME", help: "bridged: the NIC to enslave (default: the one holding the IPv4 default route)."),
    OptionSpec("--taps", value: "N", help: "Pre-create N persistent taps on the bridge (at most 1023 ports)."),
    OptionSpec("--tap-owner", value: "USER", help: "Owner of the pre-created taps, a name or uid (default root)."),
    OptionSpec("--firewall", value: "auto|iptables|nftables", help: "Firewall backend (default auto: nftables unless iptables' FORWARD drops)."),
    OptionSpec("--forward", value: "PROTO:HOSTPORT:GUEST:PORT", help: "nat: forward a host port to a guest (repeatable).", repeatable: true),
    OptionSpec("--force", help: "bridged: accept an uplink whose address was leased by DHCP."),
    OptionSpec("--dhcp", value: "on|off", help: "routed, nat: a DHCP server on the bridge (default on)."),
    OptionSpec("--dns", value: "on|off", help: "routed, nat: DNS for NET.kvmnet on the bridge (default on)."),
]

extension ParsedArguments {
    /// Whether any option describing the network (other than --name) was given.
    var hasNetworkOptions: Bool { networkOptions.dropFirst().contains { values[$0.name] != nil || flags.contains($0.name) } }

    /// The definition the network options describe: one validation path for the command line
    /// and for definition files.
    func definition(model: NetworkModel) throws(KVMNetError) -> NetworkDefinition {
        var d = NetworkDefinition(request: UpRequest(model: model), tapOwner: value("--tap-owner"))
        d.name = value("--name")
        d.bridge = value("--bridge")
        d.subnet = value("--subnet")
        d.address = value("--address")
        d.mtu = try int("--mtu", in: 68...65535).map(UInt32.init)
        d.uplink = value("--uplink")
        if let t = value("--taps") {
            guard let n = Int(t), n >= 0 else { throw .usage("invalid value '\(t)' for --taps: expected a whole number") }
            d.taps = n
        }
        d.firewall = value("--firewall")
        d.force = has("--force") ? true : nil
        d.forward = values["--forward"]
        d.dhcp = value("--dhcp")
        d.dns = value("--dns")
        if d.tapOwner != nil && (d.taps ?? 0) == 0 { throw .usage("--tap-owner needs --taps N") }
        _ = try d.request()
        return d
    }
}

/// `kvmnet up MODEL ...`, `kvmnet up [--name NET]` (a defined network), `kvmnet up --from FILE`.
public struct UpCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "up",
        abstract: "Bring a network up on this host (or repair it when it is up).",
        arguments: [ArgumentSpec("MODEL", help: "isolated, routed, nat or bridged; without it, the network defined as NET.", optional: true)],
        options: networkOptions + [
            OptionSpec("--from", value: "FILE", help: "Bring up the network a definition file describes."),
            OptionSpec("--guests", value: "N", help: "Launch N qemu guests guest01… on the network (default 0)."),
            OptionSpec("--kernel", value: "FILE", help: "Guest kernel (with --initrd; default: the built-in default guest)."),
            OptionSpec("--initrd", value: "FILE", help: "Guest initramfs (with --kernel)."),
            OptionSpec("--image", value: "DISK", help: "Boot a disk image instead; each guest gets its own qcow2 overlay."),
            OptionSpec("--memory", value: "MiB", help: "Guest memory (default 128)."),
            OptionSpec("--cpus", value: "N", help: "Guest CPUs (default 1)."),
            OptionSpec("--accel", value: "auto|kvm|tcg", help: "auto uses KVM only when /dev/kvm opens and the CPU shows vmx/svm."),
            OptionSpec("--guest-ip", value: "LIST|FIRST-LAST", help: "bridged: guest addresses on the uplink's LAN."),
            OptionSpec("--gateway", value: "IP", help: "Guests' default gateway (bridged default: the uplink's gateway)."),
            OptionSpec("--ssh-key", value: "FILE", help: "--image: public keys for the guests' cloud-init (ssh_authorized_keys)."),
            OptionSpec("--boot-wait", value: "SECONDS", help: "How long to wait for guests to boot; 0: do not wait (default 180, images 90)."),
            OptionSpec("--dry-run", help: "Print the plan, change nothing (works without root)."),
            CommonOptions.json,
        ],
        discussion: """
        EXAMPLES:
          kvmnet up nat --guests 2            the seed's NAT model with guest01 and guest02 booted on it
          kvmnet up nat                       192.168.1.0/24 behind br-in 192.168.1.254, masqueraded
          kvmnet up isolated --taps 2         br-in with vif1.0 and vif2.0, no host address
          kvmnet up bridged --uplink eth0     eth0 enslaved to br-in; its addresses and routes move
          kvmnet up routed --dry-run          show every change without making it
          kvmnet up --name lab                the network saved with `kvmnet define ... --name lab`
          kvmnet up --from Examples/nat.json  the network a definition file describes
        """)

    /// Where the network's options come from.
    public enum Source: Sendable, Equatable {
        case options(NetworkDefinition)
        case defined(NetworkName)
        case file(String)
    }

    public var source: Source
    public var guests: GuestRequest
    public var dryRun: Bool
    public var json: Bool

    /// The request when the options were given on the command line (nil until run for the others).
    public var request: UpRequest? {
        if case .options(let d) = source { return try? d.request() }
        return nil
    }

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        if let m = a.positionals.first {
            if a.value("--from") != nil { throw Self.spec.usageError("MODEL and --from exclude each other") }
            source = .options(try a.definition(model: try NetworkModel.parse(m)))
        } else {
            if a.hasNetworkOptions {
                throw Self.spec.usageError("network options need a MODEL; a defined network keeps its own (change them with `kvmnet define`)")
            }
            if let f = a.value("--from") {
                if a.value("--name") != nil { throw Self.spec.usageError("--from names its network itself (its \"name\" key)") }
                source = .file(absolute(f))
            } else {
                source = .defined(try a.network())
            }
        }
        var g = GuestRequest(count: try a.int("--guests", in: 0...maxBridgePorts) ?? 0)
        let kernel = a.value("--kernel"), initrd = a.value("--initrd"), image = a.value("--image")
        if (kernel == nil) != (initrd == nil) { throw .usage("--kernel and --initrd go together") }
        if image != nil && kernel != nil { throw .usage("--image excludes --kernel/--initrd") }
        if let k = kernel, let i = initrd { g.boot = .kernel(kernel: absolute(k), initrd: absolute(i)) }
        if let d = image { g.boot = .image(absolute(d)) }
        g.memoryMiB = try a.int("--memory", in: 16...1_048_576) ?? 128
        g.cpus = try a.int("--cpus", in: 1...256) ?? 1
        if let v = a.value("--accel") {
            guard let acc = GuestRequest.Accel(rawValue: v) else { throw .usage("invalid value '\(v)' for --accel: choose auto, kvm or tcg") }
            g.accel = acc
        }
        if let v = a.value("--guest-ip") { g.addresses = try GuestRequest.parseAddresses(v) }
        if let v = a.value("--gateway") {
            guard let ip = IPv4Address(v) else { throw .usage("invalid address '\(v)' for --gateway") }
            g.gateway = ip
        }
        if let f = a.value("--ssh-key") {
            guard a.value("--image") != nil else { throw .usage("--ssh-key is for --image guests (cloud-init reads it from their seed)") }
            guard let text = try? String(contentsOfFile: f, encoding: .utf8) else { throw .usage("cannot read --ssh-key file '\(f)'") }
            g.sshKeys = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        g.bootWait = try a.int("--boot-wait", in: 0...3600)
        let guestOnly = ["--kernel", "--initrd", "--image", "--memory", "--cpus", "--accel", "--guest-ip", "--gateway", "--ssh-key", "--boot-wait"]
        if g.count == 0, let o = guestOnly.first(where: { a.values[$0] != nil }) {
            throw .usage("\(o) is a guest option: it needs --guests N")
        }
        guests = g
        dryRun = a.has("--dry-run")
        json = a.has("--json")
    }

    public var needsPrivilege: Bool { !dryRun }
    public var wantsJSON: Bool { json }

    /// The definition to bring up, from the command line, the config folder or a file.
    func definition(_ env: HostEnvironment) throws -> NetworkDefinition {
        switch source {
        case .options(let d): return d
        case .file(let f):
            guard let store = env.definitions else { throw KVMNetError.failure("no config folder") }
            return try store.read(file: f)
        case .defined(let n):
            guard let d = try env.definitions?.load(n) else {
                throw KVMNetError.usage("network \(n) is not defined: give a MODEL (kvmnet up nat), or define it first (kvmnet define nat --name \(n))")
            }
            return d
        }
    }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        let def = try definition(env)
        var r = try def.request()
        if let o = def.tapOwner {
            guard let uid = env.userID(o) else { throw KVMNetError.usage("unknown user '\(o)' for --tap-owner") }
            r.tapOwner = uid
        }
        if !guests.addresses.isEmpty && r.model != .bridged {
            throw KVMNetError.usage("--guest-ip is for bridged networks; the \(r.model) model numbers its guests itself")
        }
        if dryRun {
            let outcome = try NetworkDriver(env: env).up(r, guests: guests.count > 0 ? guests : nil, dryRun: true)
            for f in outcome.findings { console.err("kvmnet: \(f.severity): \(f.message); \(f.action)\n") }
            if json {
                try console.json(PlanDocument(network: r.name.rawValue, model: r.model.rawValue,
                                              steps: outcome.steps.map { .init(summary: $0.summary, command: $0.command) }))
            } else {
                console.out("# kvmnet up \(r.model) --name \(r.name): \(outcome.steps.count) steps (dry run: nothing changed)\n")
                for (i, s) in outcome.steps.enumerated() { console.out("# \(i + 1). \(s.summary)\n\(s.command)\n") }
            }
            return 0
        }
        console.err("kvmnet: bringing up \(r.model) network \(r.name)\n")
        let driver = NetworkDriver(env: env)
        let outcome = try driver.up(r, guests: guests.count > 0 ? guests : nil) { i, n, step in
            if n > 40 && (i % 64 == 0 || i == n - 1) { console.err("kvmnet: [\(i + 1)/\(n)] \(step.summary)\n") }
        }
        for f in outcome.findings where f.severity != .info { console.err("kvmnet: \(f.severity): \(f.message); \(f.action)\n") }
        if guests.count > 0 {
            do {
                _ = try driver.launchGuests(guests, network: r.name) { console.err("kvmnet: \($0)\n") }
            } catch {
                if outcome.action == .created {
                    console.err("kvmnet: starting the guests failed: taking network \(r.name) down again\n")
                    _ = try? driver.down(r.name, guestTimeout: 0)
                }
                throw error
            }
        }
        // Without guests the record is the one `up` just wrote and its firewall the one it just
        // applied (or found in place): shown without reading them again.
        let status = try guests.count > 0 || outcome.record == nil ? driver.status(r.name)
            : driver.status(of: [outcome.record!], firewallApplied: true)
        if json {
            try console.json(StatusDocument(networks: status.map(NetworkDocument.init), action: outcome.action.rawValue))
        } else {
            switch outcome.action {
            case .created: console.out("network \(r.name) is up (firewall: \(outcome.spec.firewall), \(outcome.firewallReason))\n")
            case .repaired: console.out("network \(r.name) was up; repaired: "
                                        + outcome.performed.map(\.summary).joined(separator: ", ") + "\n")
            case .unchanged, .planned: console.out("network \(r.name) is up; nothing to change\n")
            }
            for s in status { console.out(render(s)) }
        }
        return 0
    }
}

/// `kvmnet down`
public struct DownCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "down",
        abstract: "Take a network down: remove what up created, restore what it changed.",
        options: [
            CommonOptions.network,
            OptionSpec("--all", help: "Every network of this namespace."),
            OptionSpec("--timeout", value: "SECONDS", help: "How long guests get to power off before they are stopped (default 5)."),
            OptionSpec("--keep-disks", help: "Keep the --image guests' overlays and seeds (moved to STATE/kept-disks/)."),
            OptionSpec("--dry-run", help: "Print what would be undone, change nothing."),
        ])

    public var name: NetworkName
    public var all: Bool
    public var dryRun: Bool
    public var timeout: Int
    public var keepDisks: Bool

    public init(_ a: ParsedArguments) throws(KVMNetError) {
        if a.has("--all") && a.value("--name") != nil { throw Self.spec.usageError("--name and --all exclude each other") }
        timeout = try a.int("--timeout", in: 0...3600) ?? 5
        keepDisks = a.has("--keep-disks")
        name = try a.network()
        all = a.has("--all")
        dryRun = a.has("--dry-run")
    }

    public var needsPrivilege: Bool { true }

    public func run(_ env: HostEnvironment, _ console: Console, _ global: GlobalOptions) throws -> Int32 {
        let driver = NetworkDriver(env: env)
        let names = all ? try env.state.all().map(\.name) : [name]
        if all && names.isEmpty { console.out("no kvmnet network is up in \(env.namespace)\n") }
        var failures: [String] = []
        for n in names {
            do {
                let o = try driver.down(n, dryRun: dryRun, guestTimeout: Double(timeout), keepDisks: keepDisks)
                for d in o.keptDisks { console.out("kept \(d)\n") }
                if !o.wasUp { console.out("network \(n) is not up; nothing to do\n"); continue }
                if dryRun {
                    console.out("# kvmnet down --name \(n): \(o.undone.count) changes to undo (dry run: nothing changed)\n")
                    for g in o.guests { console.out("# stop guest \(g)\n") }
                    for (i, e) in o.undone.enumerated() { console.out("# \(i + 1). undo: \(e.summary)\n") }
                } else {
                    console.out("network \(n) is down (\(o.guests.isEmpty ? "" : "\(o.guests.count) guest(s) stopped, ")\(o.undone.count) changes undone)\n")
                }
                for k in o.handedOver {
                    console.err("kvmnet: \(k) left as it is: another kvmnet network still needs it\n")
                }
            } catch where all {
                failures.append("\(n): \(error)")
            }
        }
        if !failures.isEmpty { throw KVMNetError.failure(failures.joined(separator: "\n")) }
        if !dryRun { try driver.reapLazyNetworks() }
        return 0
    }
}

/// `kvmnet status`
public struct StatusCommand: KVMNetCommand {
    public static let spec = CommandSpec(
        name: "status",
        abstract: "Show each network and whether the kernel still matches its record (exit 1 on drift).",
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
        let status = try NetworkDriver(env: env).status(name)
        if json {
            try console.json(StatusDocument(networks: status.map(NetworkDocument.init), action: nil))
        } else if status.isEmpty {
            console.out(name.map { "network \($0) is not up\n" } ?? "no kvmnet network is up in \(env.namespace)\n")
        } else {
            for s in status { console.out(render(s)) }
        }
        return status.contains { !$0.drift.isEmpty } ? 1 : 0
    }
}

func render(_ s: NetworkStatus) -> String {
    let spec = s.record.spec
    var out = "network \(spec.name): \(spec.model), \(s.record.namespace)\n"
    func line(_ k: String, _ v: String) { out += "  " + k.padding(toLength: 10, withPad: " ", startingAt: 0) + v + "\n" }
    line("bridge", "\(spec.bridge) mac \(spec.bridgeMAC) mtu \(spec.mtu)")
    if let u = spec.uplink { line("uplink", u.rawValue) }
    if let sub = spec.subnet { line("subnet", sub.description) }
    line("addresses", s.addresses.isEmpty ? "none" : s.addresses.map { "\($0.address)/\($0.prefixLength)" }.joined(separator: " "))
    line("ports", s.ports.isEmpty ? "none" : s.ports.joined(separator: " "))
    let fw = s.record.journal.compactMap { e -> FirewallRecord? in if case .firewall(let f) = e { return f } else { return nil } }.first
    line("firewall", fw.map { "\($0.backend): " + $0.chains.joined(separator: " ") } ?? "none")
    if let why = s.record.firewallReason, !why.isEmpty { line("", "(\(why))") }
    if let fwds = s.record.forwards, !fwds.isEmpty {
        line("forwards", fwds.map { "\($0.proto)/\($0.hostPort) → \($0.address):\($0.port) (\($0.guest))" }.joined(separator: ", "))
    }
    let sysctls = s.record.journal.compactMap { e -> String? in
        if case .changedSysctl(let k, let p, let v) = e { return "\(k)=\(v) (was \(p))" } else { return nil }
    }
    line("sysctls", sysctls.isEmpty ? "none changed" : sysctls.joined(separator: " "))
    if !s.hookTaps.isEmpty {
        line("hook taps", s.hookTaps.map { "\($0.0)" + ($0.1 ? "" : " (gone: its qemu exited without ifdown)") }.joined(separator: " "))
    }
    if s.record.lazy == true { line("lifetime", "brought up by a hook: the last ifdown takes it down") }
    for (g, alive) in s.guests {
        line(g.spec.name, "\(alive ? "running" : "NOT RUNNING") pid \(g.pid.map(String.init) ?? "-") mac \(g.spec.mac) tap \(g.spec.tap) "
             + "address \(g.spec.address.map { "\($0)" } ?? "none") (\(g.accel))")
    }
    if s.drift.isEmpty { line("state", "ok: the kernel matches the record") } else {
        line("state", "DRIFT")
        for d in s.drift { out += "    - \(d)\n" }
    }
    return out
}

func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}
