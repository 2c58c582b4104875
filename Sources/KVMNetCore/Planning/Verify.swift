import Foundation

/// One of the seed's communication tests (sections 3.2.5, 4.2.4, 5.2.4, 6.2.4).
public struct VerifyCheck: Codable, Equatable, Sendable {
    public enum Expect: String, Codable, Sendable {
        case yes, no
        /// routed → outside: depends on whether the outside routes the subnet back; reported only.
        case report
    }
    public var check: String
    /// "guest01", or "host".
    public var from: String
    public var target: String
    public var expected: Expect
    public var observed: Bool?
    public var ok: Bool { expected == .report || observed == (expected == .yes) }
}

/// The reachability each model promises, as checks to run.
public enum VerifyPlan {
    /// The IPv6 link-local address a MAC yields (modified EUI-64).
    public static func linkLocal(_ mac: MACAddress) -> String {
        let b = mac.bytes
        func g(_ hi: UInt8, _ lo: UInt8) -> UInt16 { UInt16(hi) << 8 | UInt16(lo) }
        return ipv6Text([0xfe80, 0, 0, 0, g(b[0] ^ 0x02, b[1]), g(b[2], 0xff), g(0xfe, b[3]), g(b[4], b[5])])
    }

    /// RFC 5952 text: lower-case hex, the longest run of two or more zero groups as "::".
    static func ipv6Text(_ groups: [UInt16]) -> String {
        var best = (start: -1, length: 0), i = 0
        while i < groups.count {
            var j = i
            while j < groups.count && groups[j] == 0 { j += 1 }
            if j - i > best.length && j - i >= 2 { best = (i, j - i) }
            i = max(j, i + 1)
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.start >= 0 else { return hex.joined(separator: ":") }
        return hex[..<best.start].joined(separator: ":") + "::" + hex[(best.start + best.length)...].joined(separator: ":")
    }

    /// - Parameters:
    ///   - uplinkAddress: the host's IPv4 address on its uplink (the interface of the default route).
    ///   - outside: the gateway of the host's default route.
    ///   - bridgeAddress: the host's IPv4 address on the bridge, if any.
    public static func checks(spec: NetworkSpec, guests: [GuestSpec], bridgeAddress: IPv4Address?,
                              uplinkAddress: IPv4Address?, outside: IPv4Address?) -> [VerifyCheck] {
        var out: [VerifyCheck] = []
        let m = spec.model
        for g in guests {
            if let peer = guests.first(where: { $0.index != g.index }), let a = peer.address {
                out.append(VerifyCheck(check: "\(g.name) → \(peer.name)", from: g.name, target: a.address.description, expected: .yes))
            }
            if let b = bridgeAddress {
                // An isolated network's bridge address serves only DHCP and DNS.
                out.append(VerifyCheck(check: "\(g.name) → bridge address", from: g.name, target: b.description,
                                       expected: m == .isolated ? .no : .yes))
                if spec.servesDNS {
                    out.append(VerifyCheck(check: "\(g.name) → DNS on the bridge address", from: g.name,
                                           target: "dns:\(g.name).\(spec.name).kvmnet@\(b)", expected: .yes))
                }
            }
            if let u = uplinkAddress, u != bridgeAddress || m != .bridged {
                out.append(VerifyCheck(check: "\(g.name) → host's uplink address", from: g.name, target: u.description,
                                       expected: m == .isolated ? .no : .yes))
            }
            if let o = outside {
                out.append(VerifyCheck(check: "\(g.name) → outside (uplink gateway)", from: g.name, target: o.description,
                                       expected: m == .isolated ? .no : m == .routed ? .report : .yes))
            }
            out.append(VerifyCheck(check: "\(g.name) → host over IPv6 link-local", from: g.name,
                                   target: linkLocal(spec.bridgeMAC) + "%eth0", expected: m == .bridged ? .yes : .no))
        }
        for g in guests {
            if let a = g.address {
                out.append(VerifyCheck(check: "host → \(g.name)", from: "host", target: a.address.description,
                                       expected: m == .isolated ? .no : .yes))
            }
        }
        return out
    }

    /// The shell line a guest runs for a check: exit 0 when the target answers.
    public static func guestCommand(_ c: VerifyCheck) -> String {
        if c.target.hasPrefix("dns:") {
            let parts = c.target.dropFirst(4).split(separator: "@")
            return "nslookup \(parts[0]) \(parts[1]) 2>/dev/null | grep -q '^Name:'"
        }
        if c.target.hasPrefix("fe80:") {
            // A guest that just booted gets its own link-local address only once the link is
            // ready, and then runs duplicate address detection on it (flag 0x40 in
            // /proc/net/if_inet6): wait for a usable one, up to 5 s.
            let dev = c.target.split(separator: "%").last ?? "eth0"
            return "for i in $(seq 50); do grep -Eq ' [0-38-9ab][0-9a-f] +\(dev)$' /proc/net/if_inet6 && break; sleep 0.1; done; "
                + "ping -6 -c 1 -W 2 \(c.target) >/dev/null 2>&1"
        }
        return "ping -c 1 -W 2 \(c.target) >/dev/null 2>&1"
    }
}

extension NetworkDriver {
    /// Runs the seed's communication tests from inside each guest (through its console) and
    /// from the host. Guests are checked in parallel.
    public func verify(_ network: NetworkName) throws -> (checks: [VerifyCheck], notes: [String]) {
        let g = try guestControl()
        guard let record = try env.state.load(network) else { throw KVMNetError.failure("network \(network) is not up") }
        try checkNamespace(record)
        let guests = (record.guests ?? []).map(\.spec)
        guard !guests.isEmpty else {
            throw KVMNetError.failure("network \(network) has no guests: verify needs `kvmnet up \(record.spec.model) --guests 2`")
        }
        let host = try observe()
        let br = record.spec.bridge.rawValue
        let bridgeAddress = host.addresses.first { $0.interface == br && $0.family == .inet }.flatMap { IPv4Address($0.address) }
        let defaultRoute = host.routes.first { $0.family == .inet && $0.isDefault && $0.isMainTable }
        let uplinkAddress = defaultRoute.flatMap { r in
            host.addresses.first { $0.interface == r.interface && $0.family == .inet }.flatMap { IPv4Address($0.address) }
        }
        let outside = defaultRoute?.gateway.flatMap(IPv4Address.init)
        var checks = VerifyPlan.checks(spec: record.spec, guests: guests, bridgeAddress: bridgeAddress,
                                       uplinkAddress: uplinkAddress, outside: outside)
        let paths = GuestPaths(folder: env.state.folder(for: network))
        let results = ResultBox(count: checks.count)
        let planned = checks
        let byGuest = Dictionary(grouping: planned.indices.filter { planned[$0].from != "host" }, by: { planned[$0].from })
        let groups = byGuest.keys.sorted()
        DispatchQueue.concurrentPerform(iterations: groups.count) { gi in
            for i in byGuest[groups[gi]]! {
                let c = planned[i]
                let r = try? g.exec(console: paths.console(c.from), command: VerifyPlan.guestCommand(c), timeout: 15)
                results.set(i, r.map { $0.status == 0 })
            }
        }
        for i in checks.indices where checks[i].from == "host" {
            let r = try? env.commands.run(["busybox", "ping", "-c", "1", "-W", "2", checks[i].target], stdin: nil)
            results.set(i, r.map { $0.status == 0 })
        }
        for i in checks.indices { checks[i].observed = results.get(i) }
        var notes: [String] = []
        if record.spec.model == .routed, let sub = record.spec.subnet, let u = uplinkAddress {
            notes.append("routed: the outside answers the guests only if its router has the route \(sub.subnet) via \(u)")
        }
        // The rows the table has but this host cannot show: say so rather than leave them out.
        if uplinkAddress == nil {
            notes.append("no IPv4 default route with an address on its interface here: the rows guest → host's uplink address are not checked")
        }
        if outside == nil {
            notes.append("no gateway on the IPv4 default route here: the rows guest → outside are not checked")
        }
        return (checks, notes)
    }
}

/// Results written from concurrent checks.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Bool?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: Bool?) { lock.withLock { values[i] = v } }
    func get(_ i: Int) -> Bool? { lock.withLock { values[i] } }
}
