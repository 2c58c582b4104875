import Foundation

/// One thing on the host that affects kvmnet's networks: what it breaks and what kvmnet did
/// or what the user must do.
public struct Finding: Codable, Equatable, Sendable {
    public enum Severity: String, Codable, Sendable { case error, warning, info }
    public var severity: Severity
    public var check: String
    public var message: String
    public var action: String
}

/// The firewall facts of the host, read once: who would drop kvmnet's traffic.
public struct FirewallFacts: Sendable {
    public var iptables: Bool
    public var nft: Bool
    /// iptables `filter FORWARD` policy is DROP (what Docker sets).
    public var forwardPolicyDrop: Bool
    /// iptables `filter INPUT` policy is DROP (a hardened host, ufw): the host's own DHCP/DNS
    /// server for the guests is dropped unless accepted there.
    public var inputPolicyDrop: Bool = false
    public var dockerUser: Bool
    /// br_netfilter with bridge-nf-call-iptables=1: bridged frames go through the firewall.
    public var bridgeNetfilter: Bool
    /// Base chains of other nft tables (not kvmnet's, not iptables-nft's) whose policy is drop:
    /// (table, chain, hook).
    public var foreignDrops: [(table: String, chain: String, hook: String)]
    /// Rules in iptables-legacy's tables, next to iptables-nft's.
    public var legacyRules: Int
    /// What was read, for `up` to plan its firewall change without reading again.
    public var iptablesState: IptablesState? = nil
    public var nftRuleset: String? = nil
    /// Programs listening on ports 53 or 67 (DNS, DHCP).
    public var dnsDhcpListeners: [Listener]

    /// A listener on port 53 or 67: its local address, port and program.
    public struct Listener: Equatable, Sendable {
        public var address: String
        public var port: Int
        public var process: String
        public init(address: String, port: Int, process: String) { self.address = address; self.port = port; self.process = process }
        /// Bound to every address: 0.0.0.0, ::, or *.
        public var wildcard: Bool { ["0.0.0.0", "*", "[::]", "::"].contains(address) }
    }

    /// Tables iptables-nft manages: its DROP policies are seen through iptables-save.
    static let iptablesNftTables: Set<String> = ["filter", "nat", "mangle", "raw", "security"]

    /// Parses `nft list ruleset` for base chains with policy drop in tables that are neither
    /// kvmnet's nor iptables-nft's.
    public static func foreignDrops(in ruleset: String) -> [(table: String, chain: String, hook: String)] {
        var out: [(String, String, String)] = []
        var table = "", chain = ""
        for raw in ruleset.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("table ") { table = String(line.dropFirst(6).dropLast(2)); continue }
            if line.hasPrefix("chain ") { chain = String(line.dropFirst(6).split(separator: " ")[0]); continue }
            guard line.hasPrefix("type "), line.contains("policy drop") else { continue }
            let parts = table.split(separator: " ")
            if table == NftRuleset.table || (parts.count == 2 && ["ip", "ip6"].contains(parts[0]) && iptablesNftTables.contains(String(parts[1]))) {
                continue
            }
            let f = line.split(separator: " ")
            if let i = f.firstIndex(of: "hook"), i + 1 < f.count { out.append((table, chain, String(f[i + 1]))) }
        }
        return out
    }
}

public enum Doctor {
    /// Programs listening on ports 53 and 67.
    public static func dnsDhcpListeners(_ env: HostEnvironment) -> [FirewallFacts.Listener] {
        env.probe.listeners(ports: [53, 67])
    }

    /// Chooses the backend for `--firewall`. auto: nftables when `nft` works and nothing on the
    /// host drops what an nft accept cannot override (an iptables FORWARD policy DROP); else iptables.
    /// - Parameter servesHost: the network runs a DHCP/DNS server on the host (INPUT matters too).
    public static func chooseBackend(_ choice: FirewallChoice, _ f: FirewallFacts, servesHost: Bool = false) throws(KVMNetError) -> (FirewallBackend, String) {
        switch choice {
        case .iptables:
            guard f.iptables else { throw .failure("iptables is not installed: install the Debian package iptables (apt-get install iptables)") }
            return (.iptables, "asked for with --firewall iptables")
        case .nftables:
            guard f.nft else { throw .failure("nft is not installed: install the Debian package nftables (apt-get install nftables)") }
            return (.nftables, "asked for with --firewall nftables")
        case .auto:
            if !f.nft && !f.iptables {
                throw .failure("neither nft nor iptables is installed: install the Debian package nftables or iptables")
            }
            if !f.nft { return (.iptables, "auto: nft is not installed") }
            if f.forwardPolicyDrop && f.iptables {
                return (.iptables, "auto: the iptables FORWARD chain drops by default (Docker?), which only an iptables accept overrides")
            }
            if servesHost && f.inputPolicyDrop && f.iptables {
                return (.iptables, "auto: the iptables INPUT chain drops by default, which only an iptables accept overrides (DHCP/DNS for the guests)")
            }
            if !f.iptables { return (.nftables, "auto: iptables is not installed") }
            return (.nftables, "auto: nft works and nothing drops what its accept cannot override")
        }
    }

    /// What the host's firewall means for `spec`. Errors: the network would not pass traffic.
    public static func findings(for spec: NetworkSpec, _ f: FirewallFacts) -> [Finding] {
        var out: [Finding] = []
        let br = spec.bridge.rawValue
        // Bridged frames meet FORWARD only through br_netfilter.
        if f.forwardPolicyDrop && (spec.model != .bridged || f.bridgeNetfilter) {
            if spec.firewall == .iptables {
                out.append(Finding(severity: .info, check: "forward-policy-drop",
                    message: "the iptables FORWARD chain drops by default (as Docker sets it): forwarded and bridged traffic is dropped unless accepted",
                    action: "kvmnet's accepts sit at the top of FORWARD" + (f.dockerUser ? " and in DOCKER-USER" : "") + "; the policy is left as it is"))
            } else {
                out.append(Finding(severity: .error, check: "forward-policy-drop",
                    message: "the iptables FORWARD chain drops by default (Docker?): an accept in kvmnet's nftables table cannot override it",
                    action: "use --firewall iptables (or auto, which chooses it here)"))
            }
        }
        if f.inputPolicyDrop && spec.runsDnsmasq {
            out.append(spec.firewall == .iptables
                ? Finding(severity: .info, check: "input-policy-drop",
                          message: "the iptables INPUT chain drops by default: the guests' DHCP and DNS requests to the host are dropped unless accepted",
                          action: "kvmnet's accepts for them sit at the top of INPUT; the policy is left as it is")
                : Finding(severity: .error, check: "input-policy-drop",
                          message: "the iptables INPUT chain drops by default: the guests' DHCP and DNS requests are dropped, whatever kvmnet's nftables table accepts",
                          action: "use --firewall iptables (or auto, which chooses it here), or --dhcp off --dns off"))
        }
        if f.bridgeNetfilter {
            out.append(Finding(severity: .info, check: "bridge-netfilter",
                message: "br_netfilter sends bridged frames through the firewall (bridge-nf-call-iptables=1): frames between guests on \(br) traverse FORWARD",
                action: "kvmnet's rules accept frames between ports of \(br); other bridges on this host still meet FORWARD's policy"))
        }
        for d in f.foreignDrops {
            let blocks = (d.hook == "forward" && ((spec.model != .isolated && spec.model != .bridged) || f.bridgeNetfilter))
                || (d.hook == "input" && spec.runsDnsmasq)
            if d.hook == "forward" || d.hook == "input" {
                out.append(Finding(severity: blocks ? .error : .warning, check: "foreign-nft-drop",
                    message: "nft table \(d.table) chain \(d.chain) (hook \(d.hook)) drops by default: "
                        + (d.hook == "forward" ? "traffic to and from \(br) is dropped there, whatever kvmnet accepts in its own rules"
                                               : "guests cannot reach the host's own services (the bridge address does not answer"
                            + (spec.runsDnsmasq ? ", nor its DHCP and DNS server)" : ")")),
                    action: "allow \(br) in that firewall (firewalld: firewall-cmd --zone=trusted --add-interface=\(br)); kvmnet never changes another tool's table"))
            }
        }
        if f.legacyRules > 0 {
            out.append(Finding(severity: .warning, check: "iptables-legacy",
                message: "iptables-legacy holds \(f.legacyRules) rule(s) next to iptables-nft: both apply, and a DROP there still drops",
                action: "kvmnet uses iptables-nft and nftables; check `iptables-legacy-save` for rules that drop \(br)'s traffic"))
        }
        // A server on every address of port 53 makes the network's dnsmasq fail to bind the
        // bridge's (and one started later fails in turn); a resolver on 127.0.0.53 is harmless.
        // dnsmasq instances share port 67 among themselves (libvirt runs one per network too).
        let listeners = f.dnsDhcpListeners
        if spec.servesDNS, let l = listeners.first(where: { $0.port == 53 && $0.wildcard }) {
            out.append(Finding(severity: .error, check: "dns-port",
                message: "\(l.process) listens on port 53 on every address: the DNS server of \(spec.name) could not bind \(br)'s address",
                action: "use --dns off (DHCP only), or make that server listen on specific addresses"))
        }
        if spec.servesDHCP, let l = listeners.first(where: { $0.port == 67 && $0.wildcard && !$0.process.hasPrefix("dnsmasq") }) {
            out.append(Finding(severity: .error, check: "dhcp-port",
                message: "\(l.process) listens on port 67 on every address: the DHCP server of \(spec.name) could not start",
                action: "use --dhcp off, or stop that DHCP server"))
        }
        if !spec.runsDnsmasq, !listeners.isEmpty {
            out.append(Finding(severity: .info, check: "dns-dhcp-ports",
                message: "listening on port 53 or 67: " + listeners.map { "\($0.process) on \($0.address):\($0.port)" }.joined(separator: "; "),
                action: "nothing: this network runs no DHCP or DNS server"))
        }
        return out
    }

    /// Reads the facts through the host's programs (one process each).
    /// - Parameter full: also the checks `up` does not need (iptables-legacy) and those only a
    ///   network with DHCP/DNS needs (listeners on ports 53 and 67).
    public static func facts(_ env: HostEnvironment, full: Bool = true) throws -> FirewallFacts {
        let run = env.commands
        let iptables = run.which("iptables-save") != nil && run.which("iptables-restore") != nil
        let nftInstalled = run.which("nft") != nil
        // The read-only probes run at the same time.
        let legacySave = full && run.which("iptables-legacy-save") != nil
        let probes = (iptables ? [["iptables-save"]] : []) + (nftInstalled ? [["nft", "list", "ruleset"]] : [])
            + (legacySave ? [["iptables-legacy-save"]] : [])
        let started = probes.map { argv in Result { try run.start(argv, stdin: nil) } }
        var results = started.makeIterator()
        func next() -> CommandResult? {
            guard let r = try? results.next()?.get().finish(), r.status == 0 else { return nil }
            return r
        }
        var state = IptablesState()
        var readState: IptablesState? = nil
        // Without root (`up --dry-run` as a user) the firewall cannot be read: plan without it.
        if iptables, let r = next() { state = IptablesState(save: r.stdout); readState = state }
        var drops: [(String, String, String)] = []
        var nftWorks = false
        var nftText: String? = nil
        if nftInstalled, let r = next() {
            nftWorks = true
            nftText = r.stdout
            drops = FirewallFacts.foreignDrops(in: r.stdout)
        }
        var legacy = 0
        if legacySave, let r = next() {
            legacy = r.stdout.split(separator: "\n").filter { $0.hasPrefix("-A ") }.count
        }
        var listeners: [FirewallFacts.Listener] = []
        if full { listeners = dnsDhcpListeners(env) }
        var facts = FirewallFacts(iptables: iptables, nft: nftWorks, forwardPolicyDrop: state.policies["filter:FORWARD"] == "DROP",
                             dockerUser: state.chainNames.contains("filter:DOCKER-USER"),
                             bridgeNetfilter: (try? env.sysctl.read("net/bridge/bridge-nf-call-iptables")) == "1",
                             foreignDrops: drops, legacyRules: legacy, dnsDhcpListeners: listeners)
        facts.inputPolicyDrop = state.policies["filter:INPUT"] == "DROP"
        facts.iptablesState = readState
        facts.nftRuleset = nftText
        return facts
    }
}

extension NetworkDriver {
    /// `kvmnet forward add`: adds a forward to a nat network that is up (one firewall transaction).
    public func addForward(_ r: PortForward.Request, network: NetworkName) throws -> PortForward {
        guard let record = try env.state.load(network) else { throw KVMNetError.failure("network \(network) is not up") }
        var request = UpRequest(model: record.spec.model)
        request.name = network
        request.forwards = [r]
        _ = try up(request)
        guard let f = try env.state.load(network)?.forwards?.first(where: { $0.proto == r.proto && $0.hostPort == r.hostPort }) else {
            throw KVMNetError.failure("the forward \(r) was not recorded")
        }
        return f
    }

    /// `kvmnet forward del`: removes a forward (matched by protocol and host port).
    public func removeForward(_ r: PortForward.Request, network: NetworkName) throws -> PortForward? {
        try env.state.withLock {
            guard var record = try env.state.load(network) else { throw KVMNetError.failure("network \(network) is not up") }
            try checkNamespace(record)
            var forwards = record.forwards ?? []
            guard let i = forwards.firstIndex(where: { $0.proto == r.proto && $0.hostPort == r.hostPort }) else { return nil }
            let removed = forwards.remove(at: i)
            record.forwards = forwards.isEmpty ? nil : forwards
            try env.state.save(record)
            let executor = Executor(env: env, record: record, observation: try observe())
            try executor.apply([.installFirewall(FirewallPlan(spec: record.spec, forwards: forwards))])
            var saved = executor.record
            saved.forwards = record.forwards
            try env.state.save(saved)
            return removed
        }
    }

    /// `kvmnet doctor`: the firewall findings for each network that is up (or for a new nat
    /// network when none is), plus `ip_forward` turned off under a routed or nat network.
    public func doctor(_ name: NetworkName?) throws -> [(network: String, backend: String, findings: [Finding])] {
        let facts = try Doctor.facts(env)
        var records = try env.state.all()
        if let n = name { records = records.filter { $0.name == n } }
        if records.isEmpty {
            let (backend, why) = try Doctor.chooseBackend(.auto, facts)
            let host = try observe()
            var r = UpRequest(model: .nat)
            r.name = name ?? .default
            let spec = try SpecResolver.resolve(r, links: host.links, routes: host.routes, namespace: env.namespace, backend: backend)
            var findings = Doctor.findings(for: spec, facts)
            findings.insert(Finding(severity: .info, check: "firewall-backend", message: "a new network would use \(backend)", action: why), at: 0)
            return [("(new nat network \(spec.name))", backend.rawValue, findings)]
        }
        let forwarding = try? env.sysctl.read("net.ipv4.ip_forward")
        return records.map { r in
            var findings = Doctor.findings(for: r.spec, facts)
            if r.spec.model.needsForwarding, forwarding != "1" {
                findings.append(Finding(severity: .error, check: "ip-forward-off",
                    message: "net.ipv4.ip_forward is \(forwarding ?? "unreadable"): the \(r.spec.model) network \(r.name) routes nothing",
                    action: "something on this host turned it off; `kvmnet up --name \(r.name)` turns it on again, and `down` restores the value it found"))
            }
            return (r.name.rawValue, r.spec.firewall.rawValue, findings)
        }
    }
}
