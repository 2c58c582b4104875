import Foundation
import KVMNetCore

/// A small model of one network namespace's kernel, for unit tests without root.
///
/// It keeps links, addresses, routes, sysctls and iptables chains, answers with the same typed
/// `exists`/`notFound` errors as the real adapters, records every command, and can be told to
/// fail its Nth change so rollback can be tested at every step.
public final class FakeHost: LinkControl, SysctlStore, CommandRunner, InterfaceProbe, StateStore {
    public struct Snapshot: Equatable, CustomStringConvertible {
        public var links: [String]
        public var addresses: [String]
        public var routes: [String]
        public var sysctls: [String: String]
        public var iptables: String
        public var nft: String

        public var description: String {
            (links + addresses + routes + sysctls.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: "\n")
                + "\n" + iptables + nft
        }
    }

    public var linkTable: [LinkInfo] = []
    public var addressTable: [InterfaceAddress] = []
    public var routeTable: [RouteInfo] = []
    public var sysctls: [String: String] = ["net/ipv4/ip_forward": "0"]
    /// "table" → chain → rules; built-in chains carry a policy.
    public var iptables: [String: [String: [String]]] = [:]
    public var policies: [String: [String: String]] = [:]
    public var wireless: Set<String> = []
    public var iptablesInstalled = true
    public var nftInstalled = true
    public var nftTables: [String: FakeNftTable] = [:]
    public var nftOrder: [String] = []
    /// Fail the Nth change (1-based) with `HostError.other`.
    public var failOnChange: Int?
    /// `iptables-restore` and `nft -f` reject every transaction (exit status 1, nothing changed),
    /// as they do for a rule the kernel refuses: found only when the program is waited for.
    public var rejectFirewallTransactions = false
    /// Every change made, in order ("add tap vif1.0", "del group 7", ...).
    public private(set) var changeLog: [String] = []
    /// Simulates SIGKILL after the Nth change: every later change fails and nothing more is saved.
    public var killAfterChange: Int?
    public private(set) var changes = 0
    public private(set) var commandLog: [String] = []
    public var records: [NetworkName: NetworkRecord] = [:]
    public var namespace = NamespaceIdentity(name: "test", inode: 4026532000, isRoot: false)
    public var log: [String] = []
    var nextIndex: Int32 = 1

    public init() {
        _ = addLink("lo", kind: nil, up: true, arpType: 772)
    }

    /// A host like the end-to-end sandbox: eth0 10.241.96.176/24, default via 10.241.96.1.
    public static func sandbox() -> FakeHost {
        let h = FakeHost()
        _ = h.addLink("eth0", kind: "veth", up: true, mac: MACAddress("02:00:0a:f1:60:b0"))
        try! h.addAddress(InterfaceAddress(interface: "eth0", family: .inet, address: "10.241.96.176", prefixLength: 24, broadcast: "10.241.96.255"))
        try! h.addRoute(RouteInfo(destination: "0.0.0.0/0", gateway: "10.241.96.1", interface: "eth0", proto: 4))
        h.changes = 0
        return h
    }

    public let definitions = FakeDefinitions()

    public var environment: HostEnvironment {
        var env = HostEnvironment(links: self, sysctl: self, commands: self, probe: self, state: self,
                                  namespace: namespace, canAdministerNetwork: true, log: { [weak self] in self?.log.append($0) })
        env.definitions = definitions
        return env
    }

    @discardableResult
    public func addLink(_ name: String, kind: String?, up: Bool = false, arpType: UInt32 = 1, mac: MACAddress? = nil, mtu: UInt32 = 1500) -> LinkInfo {
        let l = LinkInfo(index: nextIndex, name: name, kind: kind, arpType: arpType, isUp: up, mtu: mtu, mac: mac)
        nextIndex += 1
        linkTable.append(l)
        return l
    }

    public func snapshot() -> Snapshot {
        func master(_ l: LinkInfo) -> String {
            l.masterIndex == 0 ? "" : " master " + (linkTable.first { $0.index == l.masterIndex }?.name ?? "?")
        }
        return Snapshot(
            links: linkTable.map { "\($0.name) \($0.kind ?? "-") \($0.isUp ? "up" : "down") mtu \($0.mtu) \($0.mac.map { "\($0)" } ?? "")" + master($0) }.sorted(),
            addresses: addressTable.map { "\($0.description) flags \($0.flags)" }.sorted(),
            routes: routeTable.map(\.description).sorted(),
            sysctls: sysctls.filter { !$0.key.hasPrefix("net/ipv6/conf/") },
            iptables: iptablesSnapshot(), nft: nftListing(nftOrder))
    }

    func change(_ what: String) throws {
        if let k = killAfterChange, changes >= k { throw HostError.other("process killed") }
        changes += 1
        changeLog.append(what)
        if changes == failOnChange { throw HostError.other("injected failure at change \(changes): \(what)") }
    }

    func index(_ name: String) throws -> Int {
        guard let i = linkTable.firstIndex(where: { $0.name == name }) else { throw HostError.notFound("\(name): No such device") }
        return i
    }

    // MARK: LinkControl

    public func links() throws -> [LinkInfo] { linkTable }
    public func link(named name: String) throws -> LinkInfo? { linkTable.first { $0.name == name } }

    public func createBridge(name: String, mac: MACAddress, mtu: UInt32, group: UInt32?) throws {
        try change("add bridge \(name)")
        if linkTable.contains(where: { $0.name == name }) { throw HostError.exists("add bridge \(name): Object exists") }
        addLink(name, kind: "bridge", mac: mac, mtu: mtu)
        if let g = group { linkTable[linkTable.count - 1].group = g }
    }

    public func createTap(name: String, owner: UInt32) throws {
        try change("add tap \(name)")
        if linkTable.contains(where: { $0.name == name }) { throw HostError.exists("add tap \(name): File exists") }
        addLink(name, kind: "tun", mac: MACAddress.stable(prefix: [0xfe], seed: name))
    }

    public func deleteLink(name: String) throws {
        try change("del link \(name)")
        try deleteLinkNow(name)
    }

    func deleteLinkNow(_ name: String) throws {
        let i = try index(name)
        let l = linkTable.remove(at: i)
        for j in linkTable.indices where linkTable[j].masterIndex == l.index { linkTable[j].masterIndex = 0 }
        addressTable.removeAll { $0.interface == name }
        routeTable.removeAll { $0.interface == name }
        sysctls = sysctls.filter { !$0.key.hasPrefix("net/ipv6/conf/\(name)/") }
    }

    public func setLink(_ name: String, _ c: LinkChange) throws {
        try change("set \(name) \(c)")
        let i = try index(name)
        var master = linkTable[i].masterIndex
        if let m = c.master {
            if let b = m {
                let bi = try index(b)
                guard linkTable[bi].isBridge else { throw HostError.other("set master \(name): \(b) is not a bridge") }
                master = linkTable[bi].index
            } else { master = 0 }
        }
        linkTable[i].masterIndex = master
        if let m = c.mtu { linkTable[i].mtu = m }
        if let g = c.group { linkTable[i].group = g }
        if let u = c.up { linkTable[i].isUp = u }
    }

    public func deleteLinks(group: UInt32) throws {
        try change("del group \(group)")
        for l in linkTable where l.group == group { try deleteLinkNow(l.name) }
    }

    public func addresses() throws -> [InterfaceAddress] { addressTable }

    public func addAddress(_ a: InterfaceAddress) throws {
        try change("add address \(a)")
        _ = try index(a.interface)
        if addressTable.contains(where: { $0.interface == a.interface && $0.address == a.address && $0.prefixLength == a.prefixLength }) {
            throw HostError.exists("add address \(a): File exists")
        }
        var a = a
        a.flags &= ~AddressFlags.secondary
        if let c = a.ipv4 {
            // As the kernel: an address in the subnet of one already there is a secondary, listed
            // after every primary; only a primary gets a prefix route, with itself as `src`.
            if addressTable.contains(where: { $0.interface == a.interface && $0.ipv4.map { $0.prefixLength == c.prefixLength && $0.subnet == c.subnet } == true }) {
                a.flags |= AddressFlags.secondary
                addressTable.append(a)
            } else {
                let lastPrimary = addressTable.lastIndex { $0.interface == a.interface && $0.family == .inet && $0.flags & AddressFlags.secondary == 0 }
                addressTable.insert(a, at: lastPrimary.map { $0 + 1 } ?? addressTable.endIndex)
                if a.flags & AddressFlags.noPrefixRoute == 0 {
                    let r = RouteInfo(destination: c.subnet.description, interface: a.interface, proto: 2, scope: 253, preferredSource: a.address)
                    if !routeTable.contains(r) { routeTable.append(r) }
                }
            }
        } else {
            // As the kernel: IPv6 addresses are listed newest first within a scope, global before link.
            func rank(_ x: InterfaceAddress) -> Int { x.scope == 0 ? 14 : x.scope == 253 ? 2 : 1 }
            let at = addressTable.firstIndex { $0.interface == a.interface && $0.family == .inet6 && rank($0) <= rank(a) }
            addressTable.insert(a, at: at ?? addressTable.endIndex)
        }
    }

    public func deleteAddress(_ a: InterfaceAddress) throws {
        try change("del address \(a)")
        guard let i = addressTable.firstIndex(where: { $0.interface == a.interface && $0.address == a.address && $0.prefixLength == a.prefixLength }) else {
            throw HostError.notFound("del address \(a): Cannot assign requested address")
        }
        let removed = addressTable.remove(at: i)
        if let c = a.ipv4, removed.flags & AddressFlags.secondary == 0 {
            // As the kernel with promote_secondaries=0: the primary takes its secondaries with it.
            addressTable.removeAll { $0.interface == a.interface && $0.flags & AddressFlags.secondary != 0
                && $0.ipv4.map { $0.prefixLength == c.prefixLength && $0.subnet == c.subnet } == true }
            routeTable.removeAll { $0.interface == a.interface && $0.proto == 2 && $0.destination == c.subnet.description }
            // The last IPv4 address gone: the kernel flushes the device's IPv4 routes.
            if !addressTable.contains(where: { $0.interface == a.interface && $0.family == .inet }) {
                routeTable.removeAll { $0.interface == a.interface && $0.family == .inet }
            }
        }
    }

    public func routes() throws -> [RouteInfo] { routeTable }

    public func addRoute(_ r: RouteInfo) throws {
        try change("add route \(r)")
        _ = try index(r.interface)
        if routeTable.contains(where: { $0.family == r.family && $0.table == r.table && $0.destination == r.destination && $0.metric == r.metric }) {
            throw HostError.exists("add route \(r): File exists")
        }
        if !r.isOnlink, let g = r.gateway.flatMap(IPv4Address.init) {
            let reachable = routeTable.contains { $0.interface == r.interface && $0.gateway == nil && ($0.ipv4Destination?.contains(g) ?? false) }
            if !reachable { throw HostError.other("add route \(r): Network is unreachable") }
        }
        routeTable.append(r)
    }

    public func deleteRoute(_ r: RouteInfo) throws {
        try change("del route \(r)")
        guard let i = routeTable.firstIndex(where: { $0.family == r.family && $0.table == r.table && $0.destination == r.destination
            && $0.metric == r.metric && $0.interface == r.interface }) else {
            throw HostError.notFound("del route \(r): No such process")
        }
        routeTable.remove(at: i)
    }

    // MARK: SysctlStore

    func path(_ key: String) -> String { key.contains("/") ? key : key.replacingOccurrences(of: ".", with: "/") }

    public func read(_ key: String) throws -> String {
        guard let v = sysctls[path(key)] else { throw HostError.notFound("read \(key): No such file or directory") }
        return v
    }

    public func write(_ key: String, _ value: String) throws {
        try change("sysctl \(path(key))=\(value)")
        let p = path(key)
        if p.hasPrefix("net/ipv6/conf/") {
            let dev = p.split(separator: "/")[3]
            _ = try index(String(dev))
        } else if sysctls[p] == nil {
            throw HostError.notFound("write \(key): No such file or directory")
        }
        sysctls[p] = value
    }

    // MARK: CommandRunner (iptables-save / iptables-restore)

    public func run(_ argv: [String], stdin: String?) throws -> CommandResult {
        commandLog.append(argv.joined(separator: " "))
        guard argv[0] == "nft" ? nftInstalled : iptablesInstalled else { throw HostError.notFound("\(argv[0]): No such file or directory") }
        switch argv.first {
        case "iptables-save":
            return CommandResult(status: 0, stdout: iptablesSave())
        case "iptables-restore":
            if rejectFirewallTransactions { return CommandResult(status: 1, stderr: "iptables-restore: line 1 failed (rejected)") }
            try change("iptables-restore")
            return iptablesRestore(stdin ?? "")
        case "nft":
            return try nft(argv, stdin: stdin)
        default:
            return CommandResult(status: 127, stderr: "\(argv[0]): not modelled by FakeHost")
        }
    }

    static let builtins = ["filter": ["INPUT", "FORWARD", "OUTPUT"], "nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
                           "mangle": ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]]

    func ensureTable(_ t: String, in tables: inout [String: [String: [String]]], _ pol: inout [String: [String: String]]) {
        if tables[t] == nil {
            tables[t] = [:]
            for c in Self.builtins[t] ?? [] { tables[t]![c] = []; pol[t, default: [:]][c] = "ACCEPT" }
        }
    }

    /// Adds a foreign chain or rule, as another tool on the host would.
    public func foreign(table: String, chain: String, policy: String? = nil, rules: [String] = []) {
        ensureTable(table, in: &iptables, &policies)
        if iptables[table]![chain] == nil { iptables[table]![chain] = [] }
        if let p = policy { policies[table]![chain] = p }
        iptables[table]![chain]! += rules.map { "-A \(chain) \($0)" }
    }

    /// The host's tables less the empty built-in ones iptables-nft registers on first use
    /// (only ACCEPT built-in chains without rules): those carry no meaning.
    public func iptablesSnapshot() -> String {
        let meaningful = iptables.keys.filter { t in
            iptables[t]!.contains { c, rules in !rules.isEmpty || !(Self.builtins[t] ?? []).contains(c) || policies[t]?[c] != "ACCEPT" }
        }
        return iptablesSave(tables: meaningful.sorted())
    }

    public func iptablesSave() -> String { iptablesSave(tables: iptables.keys.sorted()) }

    func iptablesSave(tables: [String]) -> String {
        var out = ""
        for t in tables {
            out += "*\(t)\n"
            let chains = iptables[t]!
            let order = (Self.builtins[t] ?? []).filter { chains[$0] != nil } + chains.keys.filter { !(Self.builtins[t] ?? []).contains($0) }.sorted()
            for c in order { out += ":\(c) \(policies[t]?[c] ?? "-") [0:0]\n" }
            for c in order { for r in chains[c]! { out += r + "\n" } }
            out += "COMMIT\n"
        }
        return out
    }

    /// Applies a restore transaction all-or-nothing, as iptables-restore does.
    func iptablesRestore(_ text: String) -> CommandResult {
        var tables = iptables
        var pol = policies
        var table = ""
        for (n, raw) in text.split(separator: "\n").enumerated() {
            let line = String(raw)
            func fail(_ why: String) -> CommandResult {
                CommandResult(status: 1, stderr: "iptables-restore: line \(n + 1) failed: \(why)")
            }
            if line.hasPrefix("*") { table = String(line.dropFirst()); ensureTable(table, in: &tables, &pol); continue }
            if line == "COMMIT" || line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix(":") {
                let name = String(line.dropFirst().split(separator: " ")[0])
                tables[table]![name] = []
                continue
            }
            let f = line.split(separator: " ", maxSplits: 2).map(String.init)
            guard f.count >= 2 else { return fail("bad line") }
            let chain = f[1]
            switch f[0] {
            case "-A":
                guard tables[table]![chain] != nil else { return fail("no chain \(chain)") }
                tables[table]![chain]!.append("-A \(chain) \(f[2])")
            case "-I":
                guard tables[table]![chain] != nil else { return fail("no chain \(chain)") }
                var spec = f.count > 2 ? f[2] : ""
                var at = 0
                if let sp = spec.firstIndex(of: " "), let n = Int(spec[..<sp]) {
                    at = n - 1
                    spec = String(spec[spec.index(after: sp)...])
                }
                guard at >= 0, at <= tables[table]![chain]!.count else { return fail("index of insertion too big") }
                tables[table]![chain]!.insert("-A \(chain) \(spec)", at: at)
            case "-D":
                let want = "-A \(chain) \(f.count > 2 ? f[2] : "")"
                guard let i = tables[table]![chain]?.firstIndex(of: want) else { return fail("rule not found in \(chain)") }
                tables[table]![chain]!.remove(at: i)
            case "-X":
                guard tables[table]![chain]?.isEmpty == true else { return fail("cannot delete \(chain)") }
                let referenced = tables[table]!.values.contains { $0.contains { $0.hasSuffix("-j \(chain)") } }
                if referenced { return fail("chain \(chain) is referenced") }
                tables[table]![chain] = nil
            default:
                return fail("unsupported \(f[0])")
            }
        }
        iptables = tables
        policies = pol
        return CommandResult(status: 0)
    }

    // MARK: InterfaceProbe

    public func isWireless(_ name: String) -> Bool { wireless.contains(name) }
    /// Taps a pretend process holds open.
    public var heldTaps: [String: (Int32, String)] = [:]
    public func tapHolders(_ names: Set<String>) -> [String: [(pid: Int32, command: String)]] {
        heldTaps.filter { names.contains($0.key) }.mapValues { [$0] }
    }
    /// busybox (whose nslookup checks dnsmasq) is there; FakeHost answers none of its calls.
    public var busyboxInstalled = false
    /// Pretend programs listening on ports.
    public var listening: [FirewallFacts.Listener] = []
    public func listeners(ports: Set<Int>) -> [FirewallFacts.Listener] { listening.filter { ports.contains($0.port) } }

    // MARK: StateStore

    public func folder(for network: NetworkName) -> String { "/run/kvmnet/netns-test/\(network)" }
    public func load(_ network: NetworkName) throws -> NetworkRecord? { records[network] }
    public func save(_ record: NetworkRecord) throws {
        if let k = killAfterChange, changes >= k { return }
        records[record.name] = record
    }
    public func remove(_ network: NetworkName) throws {
        if let k = killAfterChange, changes >= k { return }
        records[network] = nil
    }
    public func all() throws -> [NetworkRecord] { records.values.sorted { $0.name < $1.name } }
    public func withLock<T>(_ body: () throws -> T) throws -> T { try body() }
}

extension FakeHost {
    public func which(_ program: String) -> String? {
        if program == "busybox" { return busyboxInstalled ? "/bin/busybox" : nil }
        if program.hasPrefix("iptables-legacy") || program == "conntrack" { return nil }
        if program.hasPrefix("iptables") { return iptablesInstalled ? "/usr/sbin/\(program)" : nil }
        if program == "nft" { return nftInstalled ? "/usr/sbin/nft" : nil }
        return "/usr/sbin/\(program)"
    }
}

/// Definitions kept in memory.
public final class FakeDefinitions: DefinitionStore {
    public let directory = "/etc/kvmnet"
    public var saved: [NetworkName: NetworkDefinition] = [:]
    public var files: [String: Data] = [:]
    public init() {}
    public func load(_ network: NetworkName) throws -> NetworkDefinition? { saved[network] }
    public func save(_ definition: NetworkDefinition, as network: NetworkName) throws { saved[network] = definition }
    public func remove(_ network: NetworkName) throws -> Bool { saved.removeValue(forKey: network) != nil }
    public func read(file: String) throws -> NetworkDefinition {
        guard let d = files[file] else { throw KVMNetError.usage("cannot read the definition file \(file)") }
        return try NetworkDefinition.parse(d, file: file)
    }
}

/// nftables as a small model: tables of chains (a header and rules) and maps (elements).
public struct FakeNftTable: Equatable {
    public var chains: [(name: String, header: String, rules: [String])] = []
    public var maps: [(name: String, type: String, elements: [String])] = []
    public static func == (a: Self, b: Self) -> Bool {
        a.chains.map { "\($0.name)|\($0.header)|\($0.rules)" } == b.chains.map { "\($0.name)|\($0.header)|\($0.rules)" }
            && a.maps.map { "\($0.name)|\($0.type)|\($0.elements)" } == b.maps.map { "\($0.name)|\($0.type)|\($0.elements)" }
    }
}

extension FakeHost {
    /// Adds another tool's nft base chain, e.g. a firewalld-like forward chain with policy drop.
    public func foreignNft(table: String, chain: String, header: String, rules: [String] = []) {
        var t = nftTables[table] ?? FakeNftTable()
        t.chains.append((chain, header, rules))
        nftTables[table] = t
        if !nftOrder.contains(table) { nftOrder.append(table) }
    }

    public func nftListing(_ names: [String]) -> String {
        names.map { name in
            let t = nftTables[name]!
            var blocks: [String] = []
            for m in t.maps {
                blocks.append("\tmap \(m.name) {\n\t\ttype \(m.type)\n"
                    + (m.elements.isEmpty ? "" : "\t\telements = { \(m.elements.joined(separator: ", ")) }\n") + "\t}")
            }
            for c in t.chains {
                blocks.append("\tchain \(c.name) {\n" + ([c.header] + c.rules).filter { !$0.isEmpty }.map { "\t\t\($0)\n" }.joined() + "\t}")
            }
            return "table \(name) {\n" + blocks.joined(separator: "\n\n") + "\n}\n"
        }.joined()
    }

    func nft(_ argv: [String], stdin: String?) throws -> CommandResult {
        if argv == ["nft", "list", "ruleset"] { return CommandResult(status: 0, stdout: nftListing(nftOrder)) }
        if argv.count == 5, argv[1] == "list", argv[2] == "table" {
            let name = "\(argv[3]) \(argv[4])"
            guard nftTables[name] != nil else {
                return CommandResult(status: 1, stderr: "Error: No such file or directory; did you mean table ‘\(name)’?")
            }
            return CommandResult(status: 0, stdout: nftListing([name]))
        }
        guard argv == ["nft", "-f", "-"] else { return CommandResult(status: 127, stderr: "nft: not modelled") }
        if rejectFirewallTransactions { return CommandResult(status: 1, stderr: "/dev/stdin:1:1-2: Error: rejected") }
        try change("nft -f")
        var tables = nftTables, order = nftOrder
        for (n, raw) in (stdin ?? "").split(separator: "\n").enumerated() {
            let line = String(raw)
            func fail(_ why: String) -> CommandResult { CommandResult(status: 1, stderr: "/dev/stdin:\(n + 1): Error: \(why)") }
            let w = line.split(separator: " ").map(String.init)
            guard w.count >= 3 else { return fail("syntax") }
            let table = "\(w[2]) \(w.count > 3 ? w[3] : "")"
            let obj = w.count > 4 ? w[4] : ""
            func body() -> String {
                guard let a = line.firstIndex(of: "{"), let b = line.lastIndex(of: "}") else { return "" }
                return line[line.index(after: a)..<b].trimmingCharacters(in: .whitespaces)
            }
            switch (w[0], w[1]) {
            case ("add", "table"):
                if tables[table] == nil { tables[table] = FakeNftTable(); order.append(table) }
            case ("delete", "table"):
                guard tables[table] != nil else { return fail("No such file or directory") }
                tables[table] = nil; order.removeAll { $0 == table }
            case ("add", "chain"):
                guard tables[table] != nil else { return fail("No such file or directory") }
                if !tables[table]!.chains.contains(where: { $0.name == obj }) { tables[table]!.chains.append((obj, body(), [])) }
            case ("flush", "chain"):
                guard let i = tables[table]?.chains.firstIndex(where: { $0.name == obj }) else { return fail("No such file or directory") }
                tables[table]!.chains[i].rules = []
            case ("delete", "chain"):
                guard let i = tables[table]?.chains.firstIndex(where: { $0.name == obj }) else { return fail("No such file or directory") }
                guard tables[table]!.chains[i].rules.isEmpty else { return fail("Device or resource busy") }
                tables[table]!.chains.remove(at: i)
            case ("add", "rule"):
                guard let i = tables[table]?.chains.firstIndex(where: { $0.name == obj }) else { return fail("No such file or directory") }
                tables[table]!.chains[i].rules.append(w[5...].joined(separator: " "))
            case ("add", "map"):
                guard tables[table] != nil else { return fail("No such file or directory") }
                let type = body().replacingOccurrences(of: "type ", with: "").replacingOccurrences(of: ";", with: "")
                if !tables[table]!.maps.contains(where: { $0.name == obj }) { tables[table]!.maps.append((obj, type, [])) }
            case ("flush", "map"):
                guard let i = tables[table]?.maps.firstIndex(where: { $0.name == obj }) else { return fail("No such file or directory") }
                tables[table]!.maps[i].elements = []
            case ("delete", "map"):
                guard let i = tables[table]?.maps.firstIndex(where: { $0.name == obj }) else { return fail("No such file or directory") }
                let used = tables[table]!.chains.contains { $0.rules.contains { $0.contains("@\(obj) ") } }
                if used { return fail("Device or resource busy") }
                tables[table]!.maps.remove(at: i)
            case ("add", "element"):
                guard let i = tables[table]?.maps.firstIndex(where: { $0.name == obj }) else { return fail("No such file or directory") }
                tables[table]!.maps[i].elements += body().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            default:
                return fail("unsupported: \(line)")
            }
        }
        nftTables = tables
        nftOrder = order
        return CommandResult(status: 0)
    }
}
