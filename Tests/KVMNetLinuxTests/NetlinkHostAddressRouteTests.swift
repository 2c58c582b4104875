import Glibc
import KVMNetCore
@testable import KVMNetLinux
import Testing

@Suite("NetlinkHost addresses and routes", .root)
struct NetlinkHostAddressRouteTests {
    let mac = MACAddress([0x02, 0x6b, 0x76, 0x6d, 0x00, 0x02])

    /// A namespace with bridge br0 (up) to hang addresses and routes on.
    func withBridge<T>(_ body: (NetlinkHost) throws -> T) throws -> T {
        try NamespaceThread.run {
            let host = try NetlinkHost()
            try host.createBridge(name: "br0", mac: mac, mtu: 1500)
            try host.setUp(name: "br0", true)
            return try body(host)
        }
    }

    @Test func ipv4AddressRoundTripsWithBroadcastLabelAndFlags() throws {
        let asked = InterfaceAddress(interface: "br0", family: .inet, address: "10.241.96.1", prefixLength: 24,
                                     flags: AddressFlags.permanent | AddressFlags.noPrefixRoute,
                                     broadcast: "10.241.96.255", label: "br0:gw")
        let found = try withBridge { host in
            try host.addAddress(asked)
            return try host.addresses().filter { $0.interface == "br0" && $0.family == .inet }
        }
        #expect(found == [asked])
        #expect(found.first?.isDynamic == false)
    }

    @Test func labelEqualToTheInterfaceReadsAsNil() throws {
        let found = try withBridge { host in
            try host.addAddress(InterfaceAddress(interface: "br0", family: .inet, address: "10.0.0.1", prefixLength: 8))
            return try host.addresses().first { $0.address == "10.0.0.1" }
        }
        #expect(found?.label == nil)
        #expect(found?.flags == AddressFlags.permanent)
        #expect(found?.broadcast == nil)
        #expect(found?.scope == 0)
    }

    @Test func loopbackAddressesAreListedWithHostScope() throws {
        let found = try NamespaceThread.run { try NetlinkHost().addresses() }
        let v4 = found.first { $0.family == .inet }
        #expect(v4 == InterfaceAddress(interface: "lo", family: .inet, address: "127.0.0.1", prefixLength: 8, scope: 254))
        #expect(found.contains { $0.family == .inet6 && $0.address == "::1" && $0.prefixLength == 128 })
    }

    @Test func ipv6AddressRoundTrips() throws {
        let nodad: UInt32 = 0x02
        let asked = InterfaceAddress(interface: "br0", family: .inet6, address: "2001:db8::5", prefixLength: 64,
                                     flags: AddressFlags.permanent | AddressFlags.noPrefixRoute | nodad)
        let found = try withBridge { host in
            try host.addAddress(asked)
            return try host.addresses().first { $0.address == "2001:db8::5" }
        }
        #expect(found == asked)
    }

    @Test func addressWithFiniteLifetimeIsDynamic() throws {
        let asked = InterfaceAddress(interface: "br0", family: .inet, address: "192.0.2.7", prefixLength: 24)
        let found = try withBridge { host in
            try host.addAddress(asked, lifetimes: (valid: 100, preferred: 100))
            return try host.addresses().first { $0.address == "192.0.2.7" }
        }
        #expect(found?.isDynamic == true)
        #expect(found.map { $0.flags & AddressFlags.permanent } == 0)
    }

    @Test(.ipTool) func dynamicAddressAddedByIpIsNotPermanent() throws {
        let found = try withBridge { host in
            try Spawn.check(["ip", "addr", "add", "192.0.2.8/24", "dev", "br0", "valid_lft", "100", "preferred_lft", "100"])
            return try host.addresses().first { $0.address == "192.0.2.8" }
        }
        #expect(found?.isDynamic == true)
    }

    @Test func duplicateAddressIsExistsAndMissingIsNotFound() throws {
        let a = InterfaceAddress(interface: "br0", family: .inet, address: "10.1.2.3", prefixLength: 24)
        let b = InterfaceAddress(interface: "br0", family: .inet6, address: "2001:db8::9", prefixLength: 64, flags: 0x02)
        let kinds = try withBridge { host -> [String] in
            try host.addAddress(a)
            try host.addAddress(b)
            var k = [errorKind { try host.addAddress(a) }, errorKind { try host.addAddress(b) }]
            try host.deleteAddress(a)
            try host.deleteAddress(b)
            k += [errorKind { try host.deleteAddress(a) }, errorKind { try host.deleteAddress(b) },
                  errorKind { try host.deleteAddress(a.on("nope0")) }]
            k.append(try host.addresses().contains { $0.interface == "br0" && !$0.isLinkLocal } ? "left over" : "gone")
            return k
        }
        #expect(kinds == ["exists", "exists", "notFound", "notFound", "notFound", "gone"])
    }

    @Test func kernelRouteOfAnAddressIsListed() throws {
        let routes = try withBridge { host in
            try host.addAddress(InterfaceAddress(interface: "br0", family: .inet, address: "10.241.96.1", prefixLength: 24))
            return try host.routes()
        }
        #expect(routes.contains(RouteInfo(destination: "10.241.96.0/24", interface: "br0", proto: 2, scope: 253,
                                          preferredSource: "10.241.96.1")))
    }

    @Test func routesWithGatewayAndMetricRoundTrip() throws {
        let asked = [
            RouteInfo(destination: "0.0.0.0/0", gateway: "10.241.96.254", interface: "br0", metric: 100, proto: 4),
            RouteInfo(destination: "198.51.100.0/24", interface: "br0", metric: 7, proto: 3, scope: 253,
                      preferredSource: "10.241.96.1"),
            RouteInfo(family: .inet6, destination: "::/0", gateway: "2001:db8::1", interface: "br0", metric: 300, proto: 4),
            RouteInfo(family: .inet6, destination: "2001:db8:5::/48", interface: "br0", metric: 1024, proto: 3),
        ]
        let found = try withBridge { host in
            try host.addAddress(InterfaceAddress(interface: "br0", family: .inet, address: "10.241.96.1", prefixLength: 24))
            try host.addAddress(InterfaceAddress(interface: "br0", family: .inet6, address: "2001:db8::5", prefixLength: 64, flags: 0x02))
            for r in asked { try host.addRoute(r) }
            return try host.routes()
        }
        for r in asked { #expect(found.contains(r), "missing \(r) in \(found)") }
        #expect(found.first { $0.isDefault && $0.family == .inet }?.description == "default via 10.241.96.254 dev br0 proto static metric 100")
    }

    /// Table, onlink and RTAX metrics survive a read and a write; the local table is not listed.
    @Test func routesOfOtherTablesWithOnlinkAndMetricsRoundTrip() throws {
        let asked = [
            RouteInfo(destination: "10.9.9.0/24", gateway: "10.99.0.1", interface: "br0", proto: 3, nexthopFlags: NexthopFlags.onlink),
            RouteInfo(destination: "0.0.0.0/0", gateway: "10.241.96.254", interface: "br0", proto: 4, table: 100),
            RouteInfo(destination: "10.8.0.0/16", gateway: "10.241.96.254", interface: "br0", proto: 3,
                      metrics: [.mtu: 1400, .advmss: 1300, .window: 65535, .rtt: 800, .hoplimit: 32, .initcwnd: 10]),
            RouteInfo(destination: "10.7.0.0/16", interface: "br0", proto: 3, scope: 253, table: 1000,
                      metrics: [.lock: 1 << 2, .mtu: 1280]),
            RouteInfo(family: .inet6, destination: "2001:db8:9::/48", gateway: "2001:db8::1", interface: "br0", metric: 1024,
                      proto: 3, table: 100, metrics: [.mtu: 1300, .hoplimit: 9]),
        ]
        let (found, left) = try withBridge { host in
            try host.addAddress(InterfaceAddress(interface: "br0", family: .inet, address: "10.241.96.1", prefixLength: 24))
            try host.addAddress(InterfaceAddress(interface: "br0", family: .inet6, address: "2001:db8::5", prefixLength: 64, flags: 0x02))
            for r in asked { try host.addRoute(r) }
            let found = try host.routes()
            for r in asked.reversed() { try host.deleteRoute(r) }
            return (found, try host.routes())
        }
        for r in asked { #expect(found.contains(r), "missing \(r) in \(found)") }
        #expect(!found.contains { $0.table == 255 }, "the local table is listed")
        #expect(found.contains { $0.table == 254 && $0.proto == 2 }, "the main table's prefix route is missing")
        for r in asked { #expect(!left.contains { $0.destination == r.destination && $0.table == r.table }, "\(r) not deleted") }
        #expect(asked[0].description == "10.9.9.0/24 via 10.99.0.1 dev br0 onlink")
        #expect(asked[3].description == "10.7.0.0/16 dev br0 table 1000 scope link mtu lock 1280")
    }

    @Test func duplicateRouteIsExistsAndMissingIsNotFound() throws {
        let r = RouteInfo(destination: "198.51.100.0/24", gateway: "10.241.96.254", interface: "br0", metric: 5, proto: 4)
        let r6 = RouteInfo(family: .inet6, destination: "2001:db8:7::/48", interface: "br0", metric: 5, proto: 4)
        let kinds = try withBridge { host -> [String] in
            try host.addAddress(InterfaceAddress(interface: "br0", family: .inet, address: "10.241.96.1", prefixLength: 24))
            try host.addRoute(r)
            try host.addRoute(r6)
            var k = [errorKind { try host.addRoute(r) }, errorKind { try host.addRoute(r6) }]
            var other = r; other.proto = 3   // delete matches any protocol, like `ip route del`
            try host.deleteRoute(other)
            try host.deleteRoute(r6)
            k += [errorKind { try host.deleteRoute(r) }, errorKind { try host.deleteRoute(r6) },
                  errorKind { try host.deleteRoute(r.on("nope0")) }]
            k.append(try host.routes().contains { $0.destination == r.destination || $0.destination == r6.destination } ? "left over" : "gone")
            return k
        }
        #expect(kinds == ["exists", "exists", "notFound", "notFound", "notFound", "gone"])
    }
}
