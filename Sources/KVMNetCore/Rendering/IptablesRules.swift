import Foundation

/// The iptables rules of one network: data first, rendered to `iptables-restore` text.
///
/// Layout (as libvirt and Docker do, but in kvmnet's own chains only):
/// - `filter` `KVMNET-FWI-<NET>`, jumped to from the top of `FORWARD` (and of `DOCKER-USER` when
///   that chain exists): what may enter the bridge through the host, and frames between its ports.
/// - `filter` `KVMNET-FWO-<NET>`, jumped to right after the last kvmnet `FWI` jump: what may
///   leave the bridge. Every network's inbound rules come before any network's outbound accepts
///   (as libvirt's LIBVIRT_FWI before LIBVIRT_FWO), so one network's outbound accept can never
///   let its guests into another network's guests that refuse new connections.
/// - `filter` `KVMNET-IN-<NET>`, jumped to from `INPUT` (isolated only): guests cannot reach the host.
/// - `nat` `KVMNET-NAT-<NET>`, jumped to from `POSTROUTING` (nat only): masquerade the subnet.
/// Every rule carries the comment `kvmnet:<NET>`. Rules are written in the canonical form
/// `iptables-save` prints, so drift is found by comparing text.
public struct IptablesRuleset: Equatable, Sendable {
    public struct Chain: Equatable, Sendable {
        public var table: String
        public var name: String
        /// Rule specifications after `-A <name> `.
        public var rules: [String]
        /// The built-in chain that jumps here, inserted at position 1.
        public var hook: String
        /// Matches the jump carries before its comment.
        public var match: String = ""
        /// A second built-in chain that jumps here too.
        public var alsoHook: String? = nil
        /// The jump goes right after the last kvmnet inbound (`KVMNET-FWI-`) jump, not at the top.
        public var afterInbound = false
    }

    public var network: NetworkName
    public var chains: [Chain]

    public var comment: String { "kvmnet:\(network.rawValue)" }
    var commentMatch: String { "-m comment --comment \"\(comment)\"" }

    /// The rules each model needs. See the README's firewall section for the reasoning.
    /// - Parameter forwards: nat only: DNAT from the host's addresses to guests.
    public init(spec: NetworkSpec, forwards: [PortForward] = []) {
        network = spec.name
        let br = spec.bridge.rawValue
        let c = "-m comment --comment \"kvmnet:\(spec.name.rawValue)\""
        let suffix = spec.name.chainSuffix
        let reject = "-j REJECT --reject-with icmp-port-unreachable"
        var inbound = ["-i \(br) -o \(br) \(c) -j ACCEPT"]
        var outbound: [String] = []
        var chains: [Chain] = []
        switch spec.model {
        case .isolated:
            inbound.append("-o \(br) \(c) \(reject)")
            outbound = ["-i \(br) \(c) \(reject)"]
        case .routed:
            let net = spec.subnet!.subnet.description
            inbound += ["-d \(net) -o \(br) \(c) -j ACCEPT", "-o \(br) \(c) \(reject)"]
            outbound = ["-s \(net) -i \(br) \(c) -j ACCEPT", "-i \(br) \(c) \(reject)"]
        case .nat:
            let net = spec.subnet!.subnet.description
            inbound += ["-d \(net) -o \(br) -m conntrack --ctstate RELATED,ESTABLISHED \(c) -j ACCEPT",
                        // Forwarded ports: whatever kvmnet's DNAT sent towards the guests.
                        "-d \(net) -o \(br) -m conntrack --ctstate DNAT \(c) -j ACCEPT",
                        "-o \(br) \(c) \(reject)"]
            outbound = ["-s \(net) -i \(br) \(c) -j ACCEPT", "-i \(br) \(c) \(reject)"]
        case .bridged:
            break
        }
        chains.append(Chain(table: "filter", name: "KVMNET-FWI-\(suffix)", rules: inbound, hook: "FORWARD"))
        if !outbound.isEmpty {
            chains.append(Chain(table: "filter", name: "KVMNET-FWO-\(suffix)", rules: outbound, hook: "FORWARD", afterInbound: true))
        }
        // To the host itself: the network's own DHCP and DNS server; for isolated nothing else.
        var input: [String] = []
        if spec.servesDHCP { input.append("-i \(br) -p udp -m udp --dport 67 \(c) -j ACCEPT") }
        if spec.servesDNS {
            input += ["-i \(br) -p udp -m udp --dport 53 \(c) -j ACCEPT", "-i \(br) -p tcp -m tcp --dport 53 \(c) -j ACCEPT"]
        }
        if spec.model == .isolated { input.append("-i \(br) \(c) \(reject)") }
        if !input.isEmpty {
            chains.append(Chain(table: "filter", name: "KVMNET-IN-\(suffix)", rules: input, hook: "INPUT"))
        }
        if spec.servesDHCP {
            // DHCP replies sent over a local bridge may carry an unfilled UDP checksum
            // (offload); strict clients drop them.
            chains.append(Chain(table: "mangle", name: "KVMNET-CSUM-\(suffix)",
                                rules: ["-o \(br) -p udp -m udp --dport 68 \(c) -j CHECKSUM --checksum-fill"], hook: "POSTROUTING"))
        }
        if spec.model == .nat {
            let net = spec.subnet!.subnet.description
            chains.append(Chain(table: "nat", name: "KVMNET-NAT-\(suffix)", rules: [
                "-s \(net) -d 224.0.0.0/24 \(c) -j RETURN",
                "-s \(net) -d 255.255.255.255/32 \(c) -j RETURN",
                "-s \(net) ! -d \(net) \(c) -j MASQUERADE",
                // Hairpin: a guest reaching a forward on the host's address gets the answer back
                // through the host, not straight from its neighbour.
                "-s \(net) -d \(net) -m conntrack --ctstate DNAT \(c) -j MASQUERADE",
            ], hook: "POSTROUTING"))
            let dnat = "KVMNET-DNAT-\(suffix)"
            let rules = forwards.sorted { ($0.proto.rawValue, $0.hostPort) < ($1.proto.rawValue, $1.hostPort) }.map { f in
                "-p \(f.proto) -m \(f.proto) --dport \(f.hostPort) \(c) -j DNAT --to-destination \(f.address):\(f.port)"
            }
            // Outside traffic (PREROUTING) and the host's own (OUTPUT), to any local address.
            chains.append(Chain(table: "nat", name: dnat, rules: rules, hook: "PREROUTING", match: "-m addrtype --dst-type LOCAL",
                                alsoHook: "OUTPUT"))
        }
        self.chains = chains
    }

    /// The jump rule (after `-A <hook> `) that leads from a built-in chain to `chain`.
    public func jumpRule(to chain: Chain) -> String {
        (chain.match.isEmpty ? "" : chain.match + " ") + "\(commentMatch) -j \(chain.name)"
    }

    /// The jumps this ruleset wants, given which user chains exist (`DOCKER-USER` gets them too).
    public func jumps(existingChains: Set<String>) -> [FirewallJump] {
        jumpsWithPlacement(existingChains: existingChains).map(\.0)
    }

    func jumpsWithPlacement(existingChains: Set<String>) -> [(FirewallJump, afterInbound: Bool)] {
        var out: [(FirewallJump, Bool)] = []
        for ch in chains {
            out.append((FirewallJump(table: ch.table, from: ch.hook, rule: jumpRule(to: ch)), ch.afterInbound))
            if let also = ch.alsoHook { out.append((FirewallJump(table: ch.table, from: also, rule: jumpRule(to: ch)), ch.afterInbound)) }
            if ch.hook == "FORWARD" && existingChains.contains("filter:DOCKER-USER") {
                out.append((FirewallJump(table: ch.table, from: "DOCKER-USER", rule: jumpRule(to: ch)), ch.afterInbound))
            }
        }
        return out
    }

    /// The record of what installing this ruleset creates.
    public func record(existingChains: Set<String>) -> FirewallRecord {
        FirewallRecord(backend: .iptables, chains: chains.map { "\($0.table):\($0.name)" },
                       jumps: jumps(existingChains: existingChains))
    }

    /// `iptables-restore --noflush` text that (re)creates the chains and adds the missing jumps.
    /// Declaring an existing user chain in `--noflush` mode empties it, so applying twice
    /// leaves one copy of every rule.
    public func installScript(present: IptablesState) -> String {
        var byTable: [String: [String]] = [:]
        var order: [String] = []
        func add(_ table: String, _ line: String) {
            if byTable[table] == nil { order.append(table); byTable[table] = [] }
            byTable[table]!.append(line)
        }
        for ch in chains {
            add(ch.table, ":\(ch.name) - [0:0]")
            for r in ch.rules { add(ch.table, "-A \(ch.name) \(r)") }
        }
        // Inbound jumps at the top; outbound ones right after the last kvmnet inbound jump,
        // counted on the chain as it will be once the lines before them are applied.
        var lists: [String: [String]] = [:]
        let wanted = jumpsWithPlacement(existingChains: present.chainNames).filter { !present.contains($0.0) }
        for (j, after) in wanted.sorted(by: { !$0.afterInbound && $1.afterInbound }) {
            let key = "\(j.table):\(j.from)"
            var list = lists[key] ?? present.rules[key] ?? []
            var position = 0
            if after, let last = list.lastIndex(where: { $0.contains("-j KVMNET-FWI-") }) { position = last + 1 }
            list.insert(IptablesState.normalise("-A \(j.from) \(j.rule)"), at: position)
            lists[key] = list
            add(j.table, "-I \(j.from) \(position + 1) \(j.rule)")
        }
        return order.map { t in "*\(t)\n" + byTable[t]!.joined(separator: "\n") + "\nCOMMIT\n" }.joined()
    }

    /// The rules as `iptables-save` would print them, for golden files and drift checks.
    public func expectedLines() -> [String: [String]] {
        var out: [String: [String]] = [:]
        for ch in chains { out["\(ch.table):\(ch.name)"] = ch.rules.map { "-A \(ch.name) \($0)" } }
        return out
    }
}

/// `iptables-restore --noflush` text that removes exactly the recorded objects still present.
public func iptablesRemovalScript(_ record: FirewallRecord, present: IptablesState) -> String {
    var byTable: [String: [String]] = [:]
    var order: [String] = []
    func add(_ table: String, _ line: String) {
        if byTable[table] == nil { order.append(table); byTable[table] = [] }
        byTable[table]!.append(line)
    }
    for j in record.jumps where present.contains(j) {
        for _ in 0..<present.count(j) { add(j.table, "-D \(j.from) \(j.rule)") }
    }
    for key in record.chains where present.chainNames.contains(key) {
        let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
        // Any other rule still jumping to the chain would make -X fail: those are reported as drift.
        add(parts[0], ":\(parts[1]) - [0:0]")
        add(parts[0], "-X \(parts[1])")
    }
    return order.map { t in "*\(t)\n" + byTable[t]!.joined(separator: "\n") + "\nCOMMIT\n" }.joined()
}

/// What `iptables-save` shows: per table, the chains and their rules.
public struct IptablesState: Equatable, Sendable {
    /// "table:chain" → rule lines as printed ("-A CHAIN ...").
    public var rules: [String: [String]] = [:]
    /// "table:chain" for every chain, built-in or not.
    public var chainNames: Set<String> = []
    /// "table:chain" → policy, for built-in chains.
    public var policies: [String: String] = [:]

    public init() {}

    /// Parses `iptables-save` output.
    public init(save text: String) {
        var table = ""
        for raw in text.split(separator: "\n") {
            let line = String(raw)
            if line.hasPrefix("*") { table = String(line.dropFirst()); continue }
            if line.hasPrefix(":") {
                let f = line.dropFirst().split(separator: " ")
                guard let name = f.first else { continue }
                let key = "\(table):\(name)"
                chainNames.insert(key)
                if f.count > 1, f[1] != "-" { policies[key] = String(f[1]) }
                continue
            }
            if line.hasPrefix("-A ") {
                let f = line.split(separator: " ", maxSplits: 2)
                guard f.count >= 2 else { continue }
                rules["\(table):\(f[1])", default: []].append(Self.normalise(line))
            }
        }
    }

    /// iptables-save quotes comments only when needed; compare without the quotes.
    public static func normalise(_ line: String) -> String {
        line.replacingOccurrences(of: "\"", with: "")
    }

    public func count(_ jump: FirewallJump) -> Int {
        let want = Self.normalise("-A \(jump.from) \(jump.rule)")
        return rules["\(jump.table):\(jump.from)"]?.filter { $0 == want }.count ?? 0
    }

    public func contains(_ jump: FirewallJump) -> Bool { count(jump) > 0 }
}
