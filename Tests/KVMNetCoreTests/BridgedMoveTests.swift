import Foundation
import Testing
import KVMNetTestSupport
@testable import KVMNetCore

/// The bridged move is exact: the order of addresses (so which is primary), routes of every
/// table, onlink routes and route metrics all reach the bridge and come back, after `down`,
/// after a failure at any change, and after a kill.
@Suite struct BridgedMoveTests {
    static let request: UpRequest = {
        var r = UpRequest(model: .bridged)
        r.uplink = try! InterfaceName("eth0")
        return r
    }()

    static let nodad: UInt32 = 0x02

    /// The sandbox's eth0 with a secondary address, two global IPv6 addresses, an onlink route,
    /// a default route in table 100, a route with metrics, and a gateway reachable only through
    /// a hand-made link route.
    static func host() -> FakeHost {
        let h = FakeHost.sandbox()
        try! h.addAddress(InterfaceAddress(interface: "eth0", family: .inet, address: "10.241.96.177", prefixLength: 24))
        for a in ["2001:db8::176", "2001:db8::177"] {
            try! h.addAddress(InterfaceAddress(interface: "eth0", family: .inet6, address: a, prefixLength: 64,
                                               flags: AddressFlags.permanent | nodad))
        }
        for r in [
            RouteInfo(destination: "10.9.9.0/24", gateway: "10.99.0.1", interface: "eth0", proto: 4, nexthopFlags: NexthopFlags.onlink),
            RouteInfo(destination: "0.0.0.0/0", gateway: "10.241.96.1", interface: "eth0", proto: 4, table: 100),
            RouteInfo(destination: "10.8.0.0/16", gateway: "10.241.96.1", interface: "eth0", proto: 4, metrics: [.mtu: 1400, .advmss: 1300]),
            RouteInfo(destination: "10.98.0.0/24", interface: "eth0", proto: 4, scope: 253),
            RouteInfo(destination: "10.10.0.0/16", gateway: "10.98.0.1", interface: "eth0", proto: 4),
            RouteInfo(family: .inet6, destination: "::/0", gateway: "2001:db8::1", interface: "eth0", metric: 1024, proto: 4, table: 100,
                      metrics: [.mtu: 1300]),
        ] {
            try! h.addRoute(r)
        }
        return h
    }

    /// The snapshot plus what it sorts away: the order of each interface's addresses, per
    /// family (the kernel keeps one list per family and interface).
    static func exact(_ h: FakeHost) -> String {
        let lists = Dictionary(grouping: h.addressTable) { "\($0.interface) \($0.family)" }
        return h.snapshot().description + "\n" + lists.keys.sorted().map { key in
            key + ": " + lists[key]!.map { "\($0.address)/\($0.prefixLength) flags \($0.flags)" }.joined(separator: ", ")
        }.joined(separator: "\n")
    }

    @Test func upAndDownAreExact() throws {
        let host = Self.host()
        let before = Self.exact(host)
        let eth0Addresses = host.addressTable.filter { $0.interface == "eth0" }
        let eth0Routes = host.routeTable.filter { $0.interface == "eth0" && $0.proto != 2 }
        let driver = NetworkDriver(env: host.environment)
        _ = try driver.up(Self.request)

        let onBridge = host.addressTable.filter { $0.interface == "br-in" }
        #expect(onBridge.map(\.address) == eth0Addresses.map(\.address), "the bridge's addresses in another order")
        #expect(onBridge.map(\.flags) == eth0Addresses.map(\.flags), "primary and secondary swapped")
        #expect(host.routeTable.contains(RouteInfo(destination: "10.241.96.0/24", interface: "br-in", proto: 2, scope: 253,
                                                   preferredSource: "10.241.96.176")))
        for r in eth0Routes { #expect(host.routeTable.contains(r.on("br-in")), "\(r) did not move with its attributes") }
        #expect(!host.routeTable.contains { $0.interface == "eth0" })
        #expect(try driver.status().allSatisfy { $0.drift.isEmpty })

        _ = try driver.down(.default)
        let after = Self.exact(host)
        #expect(after == before, "down did not restore the host exactly:\n\(after)\n---\n\(before)")
    }

    /// A moved route of another table that goes missing shows as drift.
    @Test func aMissingRouteOfAnotherTableIsDrift() throws {
        let host = Self.host()
        let driver = NetworkDriver(env: host.environment)
        _ = try driver.up(Self.request)
        host.routeTable.removeAll { $0.table == 100 && $0.family == .inet }
        let drift = try driver.status().first?.drift ?? []
        #expect(drift.contains { $0.contains("default via 10.241.96.1 dev br-in table 100") }, "\(drift)")
    }

    /// Counts the changes a successful `up` makes, then fails each one in turn: also every
    /// change of the move, after the uplink's addresses and routes started to go.
    @Test func aFailureAtEveryChangeLeavesTheHostExact() throws {
        let probe = Self.host()
        let setup = probe.changes   // the changes that built the host count too
        _ = try NetworkDriver(env: probe.environment).up(Self.request)
        let total = probe.changes - setup
        #expect(total > 20)
        for k in 1...total {
            let host = Self.host()
            let before = Self.exact(host)
            host.failOnChange = setup + k
            #expect(throws: KVMNetError.self) { try NetworkDriver(env: host.environment).up(Self.request) }
            host.failOnChange = nil
            let after = Self.exact(host)
            #expect(after == before, "failure at change \(k) of \(total) left:\n\(after)\n---\n\(before)")
            #expect(host.records.isEmpty)
        }
    }

    /// SIGKILL at any change of `up`: `down` puts the host back exactly.
    @Test func downAfterAKillAnywhereIsExact() throws {
        let probe = Self.host()
        let setup = probe.changes
        _ = try NetworkDriver(env: probe.environment).up(Self.request)
        for k in 1..<(probe.changes - setup) {
            let host = Self.host()
            let before = Self.exact(host)
            host.killAfterChange = setup + k
            _ = try? NetworkDriver(env: host.environment).up(Self.request)
            host.killAfterChange = nil
            _ = try NetworkDriver(env: host.environment).down(.default)
            let after = Self.exact(host)
            #expect(after == before, "down after a kill at change \(k) left:\n\(after)\n---\n\(before)")
        }
    }

    /// The plan adds in the order that rebuilds the uplink and takes off in reverse, so undoing
    /// any part of it in reverse puts things back in order; a primary never goes before its
    /// secondaries.
    @Test func theMoveTakesOffInReverseOfAdding() {
        let host = Self.host()
        let observation = HostObservation(links: host.linkTable, addresses: host.addressTable, routes: host.routeTable)
        let steps = Planner.bridgedMove(uplink: "eth0", bridge: "br-in", host: observation, record: nil)
        let added = steps.compactMap { s -> String? in if case .addAddress(let a) = s { return a.address } else { return nil } }
        let removed = steps.compactMap { s -> String? in if case .removeAddress(let a) = s { return a.address } else { return nil } }
        #expect(added == ["10.241.96.176", "10.241.96.177", "2001:db8::176", "2001:db8::177"])
        #expect(removed == added.reversed())
        let addedRoutes = steps.compactMap { s -> RouteInfo? in if case .addRoute(let r) = s { return r } else { return nil } }
        let removedRoutes = steps.compactMap { s -> RouteInfo? in if case .removeRoute(let r) = s { return r.on("br-in") } else { return nil } }
        #expect(removedRoutes == addedRoutes.reversed())
        let link = addedRoutes.firstIndex { $0.destination == "10.98.0.0/24" }, via = addedRoutes.firstIndex { $0.gateway == "10.98.0.1" }
        #expect(link != nil && via != nil && link! < via!, "a route is added before the route to its gateway")
    }

    /// Records written before routes had a table, flags and metrics still load.
    @Test func oldRecordedRoutesDecodeAsMainTable() throws {
        let json = #"{"destination":"0.0.0.0/0","family":"inet","gateway":"10.241.96.1","interface":"eth0","metric":0,"proto":4,"scope":0}"#
        let r = try JSONDecoder().decode(RouteInfo.self, from: Data(json.utf8))
        #expect(r == RouteInfo(destination: "0.0.0.0/0", gateway: "10.241.96.1", interface: "eth0", proto: 4))
        for r in Self.host().routeTable {
            #expect(try JSONDecoder().decode(RouteInfo.self, from: JSONEncoder().encode(r)) == r)
        }
    }
}
