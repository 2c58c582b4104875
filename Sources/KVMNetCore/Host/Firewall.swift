import Foundation

/// A network's firewall as planned: its spec (which names the backend) and its port forwards.
public struct FirewallPlan: Equatable, Sendable {
    public var spec: NetworkSpec
    public var forwards: [PortForward]

    public init(spec: NetworkSpec, forwards: [PortForward] = []) { self.spec = spec; self.forwards = forwards }

    public var backend: FirewallBackend { spec.firewall }
    public var iptables: IptablesRuleset { IptablesRuleset(spec: spec, forwards: forwards) }
    public var nft: NftRuleset { NftRuleset(spec: spec, forwards: forwards) }

    /// What a person would type to install it on an empty host (for --dry-run).
    public var command: String {
        switch backend {
        case .iptables: return "iptables-restore -w --noflush <<EOF\n" + iptables.installScript(present: IptablesState()) + "EOF"
        case .nftables: return "nft -f - <<EOF\n" + nft.installScript + "EOF"
        }
    }
}

/// Installs, removes and checks a network's firewall objects through the `iptables-save` /
/// `iptables-restore` or `nft` programs: one process to read, one transaction to change.
public struct Firewall {
    let runner: any CommandRunner

    public init(_ runner: any CommandRunner) { self.runner = runner }

    /// A change ready to make: the record to journal first, then `start`.
    public struct Change {
        public var record: FirewallRecord
        /// False when the host already shows exactly this firewall.
        public var needed: Bool
        /// Starts the transaction; the function it returns waits for it (and throws when it failed).
        public var start: () throws -> () throws -> Void
    }

    /// Reads the host once and prepares the transaction that makes it show `plan`.
    /// - Parameter previous: the record of an earlier run (jumps it added are kept).
    /// - Parameter read: the host's firewall as `up` read it a moment ago (saves reading it again).
    public func prepare(_ plan: FirewallPlan, previous: FirewallRecord?, read: FirewallFacts? = nil) throws -> Change {
        switch plan.backend {
        case .iptables:
            let ipt = Iptables(runner)
            let present = try read?.iptablesState ?? ipt.save()
            let rules = plan.iptables
            var rec = rules.record(existingChains: present.chainNames)
            if let old = previous, old.backend == .iptables {
                // Keep what an earlier run added (a jump from a DOCKER-USER chain that appeared then).
                rec.jumps = old.jumps + rec.jumps.filter { !old.jumps.contains($0) }
                rec.chains = old.chains + rec.chains.filter { !old.chains.contains($0) }
            }
            let inPlace = rules.jumps(existingChains: present.chainNames).allSatisfy { present.count($0) == 1 }
                && rules.expectedLines().allSatisfy { key, lines in present.rules[key] ?? [] == lines.map(IptablesState.normalise) }
                && previous == rec
            let script = rules.installScript(present: present)
            return Change(record: rec, needed: !inPlace, start: { try ipt.startRestore(script) })
        case .nftables:
            let nft = Nft(runner)
            let present = try read?.nftRuleset.map { NftState(ruleset: $0) } ?? nft.list()
            let rules = plan.nft
            let rec = rules.record
            let inPlace = previous == rec
                && rules.chains.allSatisfy { present.chains[$0.name] == $0.rules }
                && rules.maps.allSatisfy { Set(present.maps[$0.name] ?? []) == Set($0.elements) }
            let script = rules.installScript
            return Change(record: rec, needed: !inPlace, start: { try nft.start(script) })
        }
    }

    /// Removes exactly the recorded objects that are still there: reads the host and starts the
    /// transaction; the function it returns waits for it (and throws when it failed).
    public func startRemoval(_ record: FirewallRecord) throws -> () throws -> Void {
        switch record.backend {
        case .iptables:
            let ipt = Iptables(runner)
            return try ipt.startRestore(iptablesRemovalScript(record, present: try ipt.save()))
        case .nftables:
            let nft = Nft(runner)
            let present = try nft.list()
            guard present.exists else { return {} }
            let ours = Set(record.chains)
            let all = Set(present.chains.keys.map { "chain:\($0)" } + present.maps.keys.map { "map:\($0)" })
            if all.isSubset(of: ours) {
                // Nothing else in kvmnet's table: the table goes with them.
                return try nft.start("delete table \(NftRuleset.table)\n")
            }
            var lines: [String] = []
            for o in record.chains where o.hasPrefix("chain:") && all.contains(o) {
                let name = o.dropFirst(6)
                lines += ["flush chain \(NftRuleset.table) \(name)", "delete chain \(NftRuleset.table) \(name)"]
            }
            for o in record.chains where o.hasPrefix("map:") && all.contains(o) {
                lines.append("delete map \(NftRuleset.table) \(o.dropFirst(4))")
            }
            return lines.isEmpty ? {} : try nft.start(lines.joined(separator: "\n") + "\n")
        }
    }

    /// How the host differs from `plan` (empty when it matches).
    /// - Parameter read: the backend's state read once for several networks (read here when nil).
    public func drift(_ plan: FirewallPlan, record: FirewallRecord, read: FirewallReads? = nil) throws -> [String] {
        var out: [String] = []
        let read = read ?? FirewallReads(runner)
        switch record.backend {
        case .iptables:
            let present = try read.iptables()
            for j in record.jumps where !present.contains(j) {
                out.append("the jump from \(j.table) \(j.from) to kvmnet's chain is missing")
            }
            let expected = plan.iptables.expectedLines()
            for key in record.chains {
                guard present.chainNames.contains(key) else { out.append("iptables chain \(key) is missing"); continue }
                let want = (expected[key] ?? []).map(IptablesState.normalise)
                let have = present.rules[key] ?? []
                if want != have {
                    out.append("iptables chain \(key) differs: \(want.filter { !have.contains($0) }.count) rule(s) missing, "
                               + "\(have.filter { !want.contains($0) }.count) unexpected")
                }
            }
        case .nftables:
            let present = try read.nft()
            for ch in plan.nft.chains {
                guard let have = present.chains[ch.name] else { out.append("nft chain \(NftRuleset.table) \(ch.name) is missing"); continue }
                if have != ch.rules {
                    out.append("nft chain \(ch.name) differs: \(ch.rules.filter { !have.contains($0) }.count) rule(s) missing, "
                               + "\(have.filter { !ch.rules.contains($0) }.count) unexpected")
                }
            }
            for m in plan.nft.maps {
                guard let have = present.maps[m.name] else { out.append("nft map \(m.name) is missing"); continue }
                if Set(have) != Set(m.elements) { out.append("nft map \(m.name) differs from the recorded forwards") }
            }
        }
        return out
    }
}

/// Each backend's state, read at most once (one `iptables-save`, one `nft list table`).
public final class FirewallReads {
    let runner: any CommandRunner
    private var ipt: IptablesState?
    private var nftState: NftState?

    public init(_ runner: any CommandRunner) { self.runner = runner }

    public func iptables() throws -> IptablesState {
        if let s = ipt { return s }
        let s = try Iptables(runner).save()
        ipt = s
        return s
    }

    public func nft() throws -> NftState {
        if let s = nftState { return s }
        let s = try Nft(runner).list()
        nftState = s
        return s
    }
}

/// nft through subprocesses: one `nft list table` to read, one `nft -f -` transaction to change.
public struct Nft {
    let runner: any CommandRunner

    public init(_ runner: any CommandRunner) { self.runner = runner }

    /// kvmnet's table as it is now (empty when it does not exist).
    public func list() throws -> NftState {
        let argv = ["nft", "list", "table", "inet", "kvmnet"]
        let r = try run(argv, stdin: nil)
        if r.status != 0 {
            if r.stderr.contains("No such file or directory") { return NftState() }
            throw KVMNetError.failure(CommandFailure.describe(argv: argv, result: r))
        }
        return NftState(listing: r.stdout)
    }

    /// The whole ruleset, for finding other tables' drop policies.
    public func ruleset() throws -> String {
        let argv = ["nft", "list", "ruleset"]
        let r = try run(argv, stdin: nil)
        guard r.status == 0 else { throw KVMNetError.failure(CommandFailure.describe(argv: argv, result: r)) }
        return r.stdout
    }

    /// Starts `nft -f -` with a transaction (all of it or nothing); the function it returns
    /// waits for it.
    public func start(_ script: String) throws -> () throws -> Void {
        let argv = ["nft", "-f", "-"]
        let started = try installed { try runner.start(argv, stdin: script) }
        return {
            let r = try started.finish()
            guard r.status == 0 else { throw KVMNetError.failure(CommandFailure.describe(argv: argv, result: r)) }
        }
    }

    func run(_ argv: [String], stdin: String?) throws -> CommandResult {
        try installed { try runner.run(argv, stdin: stdin) }
    }

    func installed<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch HostError.notFound {
            throw KVMNetError.failure("nft is not installed: install the Debian package nftables (apt-get install nftables)")
        }
    }
}
