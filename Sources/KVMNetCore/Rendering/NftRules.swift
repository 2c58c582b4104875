import Foundation

/// The nftables rules of one network, in kvmnet's own table `inet kvmnet`: data first,
/// rendered to one `nft -f -` transaction.
///
/// Per network: base chains `fwd-NET` (hook forward), `in-NET` (isolated: hook input),
/// `nat-NET` (nat: hook postrouting), `dnat-NET` / `out-NET` (nat: port forwards, hooks
/// prerouting and output) and the maps `fwd-tcp-NET` / `fwd-udp-NET` of forwarded ports, so
/// the rule count never grows with the number of guests or forwards. Rules are written as
/// `nft list` prints them, so drift is found by comparing text. Same semantics as the
/// iptables backend; note that an accept here ends evaluation only in this table: another
/// table's drop (firewalld, iptables-nft with policy DROP) still drops.
public struct NftRuleset: Equatable, Sendable {
    public static let table = "inet kvmnet"

    public struct Chain: Equatable, Sendable {
        public var name: String
        /// "type filter hook forward priority filter; policy accept;"
        public var header: String
        public var rules: [String]
    }

    public struct Map: Equatable, Sendable {
        public var name: String
        public var type: String
        public var elements: [String]
    }

    public var network: NetworkName
    public var chains: [Chain]
    public var maps: [Map]

    public init(spec: NetworkSpec, forwards: [PortForward] = []) {
        network = spec.name
        let n = spec.name.rawValue
        let br = "\"\(spec.bridge.rawValue)\""
        let c = "comment \"kvmnet:\(n)\""
        let filter = { (hook: String) in "type filter hook \(hook) priority filter; policy accept;" }
        var fwd: [String] = []
        var chains: [Chain] = []
        var maps: [Map] = []
        switch spec.model {
        case .isolated:
            fwd = ["iifname \(br) oifname \(br) accept \(c)",
                   "iifname \(br) reject \(c)",
                   "oifname \(br) reject \(c)"]
        case .routed:
            let net = spec.subnet!.subnet.description
            fwd = ["iifname \(br) oifname \(br) accept \(c)",
                   "ip saddr \(net) iifname \(br) accept \(c)",
                   "ip daddr \(net) oifname \(br) accept \(c)",
                   "iifname \(br) reject \(c)",
                   "oifname \(br) reject \(c)"]
        case .nat:
            let net = spec.subnet!.subnet.description
            fwd = ["iifname \(br) oifname \(br) accept \(c)",
                   "ip saddr \(net) iifname \(br) accept \(c)",
                   "ip daddr \(net) oifname \(br) ct state established,related accept \(c)",
                   "ip daddr \(net) oifname \(br) ct status dnat accept \(c)",
                   "iifname \(br) reject \(c)",
                   "oifname \(br) reject \(c)"]
        case .bridged:
            fwd = ["iifname \(br) oifname \(br) accept \(c)"]
        }
        chains.append(Chain(name: "fwd-\(n)", header: filter("forward"), rules: fwd))
        var input: [String] = []
        if spec.servesDHCP { input.append("iifname \(br) udp dport 67 accept \(c)") }
        if spec.servesDNS { input += ["iifname \(br) udp dport 53 accept \(c)", "iifname \(br) tcp dport 53 accept \(c)"] }
        if spec.model == .isolated { input.append("iifname \(br) reject \(c)") }
        if !input.isEmpty { chains.append(Chain(name: "in-\(n)", header: filter("input"), rules: input)) }
        if spec.servesDHCP {
            // nftables cannot fill in a checksum; a zero UDP checksum means "none" and is accepted.
            // In a base chain of its own: an accept earlier in the same chain would end evaluation.
            chains.append(Chain(name: "csum-\(n)", header: "type filter hook postrouting priority mangle; policy accept;",
                                rules: ["oifname \(br) meta nfproto ipv4 udp dport 68 udp checksum set 0 \(c)"]))
        }
        if spec.model == .nat {
            let net = spec.subnet!.subnet.description
            chains.append(Chain(name: "nat-\(n)", header: "type nat hook postrouting priority srcnat; policy accept;", rules: [
                "ip saddr \(net) ip daddr 224.0.0.0/24 return \(c)",
                "ip saddr \(net) ip daddr 255.255.255.255 return \(c)",
                "ip saddr \(net) ip daddr != \(net) masquerade \(c)",
                "ip saddr \(net) ip daddr \(net) ct status dnat masquerade \(c)",
            ]))
            let dnat = PortForward.Proto.allCases.map { p in
                "fib daddr type local dnat ip to \(p) dport map @fwd-\(p)-\(n) \(c)"
            }
            chains.append(Chain(name: "dnat-\(n)", header: "type nat hook prerouting priority dstnat; policy accept;", rules: dnat))
            chains.append(Chain(name: "out-\(n)", header: "type nat hook output priority -100; policy accept;", rules: dnat))
            for p in PortForward.Proto.allCases {
                let elements = forwards.filter { $0.proto == p }.sorted { $0.hostPort < $1.hostPort }
                    .map { "\($0.hostPort) : \($0.address) . \($0.port)" }
                maps.append(Map(name: "fwd-\(p)-\(n)", type: "inet_service : ipv4_addr . inet_service", elements: elements))
            }
        }
        self.chains = chains
        self.maps = maps
    }

    /// One transaction that (re)creates this network's objects: `add` is idempotent, `flush`
    /// empties what an earlier run left, so applying twice leaves one copy of everything.
    public var installScript: String {
        var lines = ["add table \(Self.table)"]
        for m in maps {
            lines.append("add map \(Self.table) \(m.name) { type \(m.type); }")
            lines.append("flush map \(Self.table) \(m.name)")
            if !m.elements.isEmpty { lines.append("add element \(Self.table) \(m.name) { \(m.elements.joined(separator: ", ")) }") }
        }
        for ch in chains {
            lines.append("add chain \(Self.table) \(ch.name) { \(ch.header) }")
            lines.append("flush chain \(Self.table) \(ch.name)")
            for r in ch.rules { lines.append("add rule \(Self.table) \(ch.name) \(r)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public var objectNames: [String] { maps.map { "map:\($0.name)" } + chains.map { "chain:\($0.name)" } }

    /// The record of what installing this ruleset creates.
    public var record: FirewallRecord {
        FirewallRecord(backend: .nftables, chains: objectNames, jumps: [])
    }
}

/// What `nft list table inet kvmnet` shows: chains with their rules, maps with their elements.
public struct NftState: Equatable, Sendable {
    public var exists = false
    /// chain name → rule lines (without handles or counters).
    public var chains: [String: [String]] = [:]
    /// map name → element text ("8080 : 192.168.1.1 . 80").
    public var maps: [String: [String]] = [:]

    public init() {}

    /// Parses `nft list table inet kvmnet` output (empty when the table does not exist).
    public init(listing text: String) {
        var chain: String? = nil, map: String? = nil
        var inElements = false
        var elementText = ""
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("table ") { exists = true; continue }
            if line.hasPrefix("chain ") { chain = String(line.dropFirst(6).split(separator: " ")[0]); chains[chain!] = []; continue }
            if line.hasPrefix("map ") { map = String(line.dropFirst(4).split(separator: " ")[0]); maps[map!] = []; continue }
            if line == "}" {
                if inElements { inElements = false }
                chain = nil; map = nil; continue
            }
            if let m = map {
                if line.hasPrefix("elements = {") || inElements {
                    inElements = !line.hasSuffix("}")
                    elementText += line.replacingOccurrences(of: "elements = {", with: "").replacingOccurrences(of: "}", with: "") + ","
                    if !inElements {
                        maps[m] = elementText.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                        elementText = ""
                    }
                }
                continue
            }
            if let ch = chain, !line.hasPrefix("type ") {
                chains[ch]!.append(Self.normalise(line))
            }
        }
    }

    /// kvmnet's table cut out of a whole `nft list ruleset`.
    public init(ruleset: String) {
        var block: [Substring] = []
        var inside = false
        for line in ruleset.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "table \(NftRuleset.table) {" { inside = true }
            if inside { block.append(line) }
            if inside && line == "}" { break }
        }
        self.init(listing: block.joined(separator: "\n"))
    }

    static func normalise(_ rule: String) -> String {
        rule.replacingOccurrences(of: #" # handle [0-9]+"#, with: "", options: .regularExpression)
            .replacingOccurrences(of: #"counter packets [0-9]+ bytes [0-9]+ "#, with: "", options: .regularExpression)
    }
}
