import Testing
@testable import KVMNetCore

@Suite struct ValueTypeTests {
    @Test(arguments: ["192.168.1.0/24", "10.0.1.0/24", "0.0.0.0/0", "10.241.96.176/32"])
    func cidrRoundTrips(_ text: String) throws {
        #expect(CIDRv4(text)?.description == text)
    }

    @Test(arguments: ["192.168.1.0", "192.168.1.0/33", "300.1.1.1/24", "1.2.3/24", "a.b.c.d/8", "1.2.3.4/", "01234.1.1.1/8"])
    func badCIDRsAreRejected(_ text: String) {
        #expect(CIDRv4(text) == nil)
    }

    @Test func subnetArithmetic() throws {
        let c = try #require(CIDRv4("192.168.1.0/24"))
        #expect(c.lastHost.description == "192.168.1.254")
        #expect(c.broadcast.description == "192.168.1.255")
        #expect(c.contains(IPv4Address("192.168.1.77")!))
        #expect(!c.contains(IPv4Address("192.168.2.1")!))
        #expect(c.overlaps(CIDRv4("192.168.0.0/16")!))
        #expect(!c.overlaps(CIDRv4("192.168.2.0/24")!))
    }

    @Test func interfaceNamesFollowTheKernelRules() throws {
        #expect(try InterfaceName("br-in").rawValue == "br-in")
        #expect(try InterfaceName("a23456789012345").rawValue.utf8.count == 15)
        #expect(throws: KVMNetError.self) { try InterfaceName("a234567890123456") }
        #expect(throws: KVMNetError.self) { try InterfaceName("br/in") }
        #expect(throws: KVMNetError.self) { try InterfaceName("br in") }
        #expect(throws: KVMNetError.self) { try InterfaceName("") }
        do {
            _ = try InterfaceName("averyveryverylongname")
            Issue.record("accepted a 21-byte name")
        } catch {
            #expect(error.description.contains("'averyveryverylongname'"))
            #expect(error.description.contains("at most 15"))
            #expect(error.exitCode == 64)
        }
    }

    @Test(arguments: ["default", "lab", "a", "n0-1", "abcdefghijkl"])
    func goodNetworkNames(_ n: String) throws { _ = try NetworkName(n) }

    @Test(arguments: ["", "-lab", "Lab", "lab_1", "abcdefghijklm", "lab.1", "lab/1"])
    func badNetworkNames(_ n: String) {
        #expect(throws: KVMNetError.self) { try NetworkName(n) }
    }

    @Test func seedNamesForTheDefaultNetwork() {
        #expect(NetworkName.default.defaultBridge.rawValue == "br-in")
        #expect(NetworkName.default.tapName(1).rawValue == "vif1.0")
        #expect(NetworkName.default.tapName(1023).rawValue == "vif1023.0")
    }

    @Test func derivedNamesFitAndAreDistinct() throws {
        var seen = Set<String>()
        for n in ["in", "lab", "abcdefghij", "abcdefghijk", "abcdefghijkl", "abcdefghijkm"] {
            let net = try NetworkName(n)
            #expect(net.defaultBridge.rawValue.utf8.count <= 15)
            #expect(net.defaultBridge.rawValue != "br-in")
            for i in [1, 9, 10, 999, 1023] {
                let t = net.tapName(i).rawValue
                #expect(t.utf8.count <= 15, "\(t) is too long")
                #expect(seen.insert(t).inserted, "\(t) is derived twice")
            }
        }
    }

    @Test func stableMACsAreLocallyAdministeredUnicast() {
        let a = MACAddress.stable(prefix: [0x52, 0x54, 0x00], seed: "x")
        #expect(a == MACAddress.stable(prefix: [0x52, 0x54, 0x00], seed: "x"))
        #expect(a != MACAddress.stable(prefix: [0x52, 0x54, 0x00], seed: "y"))
        #expect(a.isLocallyAdministered && !a.isMulticast)
        #expect(MACAddress("52:54:00:11:22:aa")?.description == "52:54:00:11:22:aa")
        #expect(MACAddress("52:54:00:11:22") == nil)
    }

    @Test(arguments: NetworkModel.allCases)
    func modelsParse(_ m: NetworkModel) throws {
        #expect(try NetworkModel.parse(m.rawValue) == m)
    }

    @Test func unknownModelListsTheFour() {
        do { _ = try NetworkModel.parse("host-only"); Issue.record("parsed") } catch {
            #expect(error.exitCode == 64)
            #expect(error.description == "unknown model 'host-only': choose one of isolated, routed, nat, bridged")
        }
    }
}
