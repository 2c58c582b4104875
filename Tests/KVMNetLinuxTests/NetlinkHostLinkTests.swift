import Glibc
import KVMNetCore
import KVMNetLinux
import Testing

/// Every test runs in its own fresh network namespace on its own thread (NamespaceThread),
/// so the tests never touch the machine's network and run in parallel.
@Suite("NetlinkHost links", .root)
struct NetlinkHostLinkTests {
    let mac = MACAddress([0x02, 0x6b, 0x76, 0x6d, 0x00, 0x01])

    @Test func freshNamespaceHasOnlyLoopbackUp() throws {
        let links = try NamespaceThread.run { try NetlinkHost().links() }
        #expect(links.map(\.name) == ["lo"])
        #expect(links.first?.isUp == true)
        #expect(links.first?.arpType == 772)
        #expect(links.first?.kind == nil)
    }

    @Test func linkNamedMissingIsNil() throws {
        let found = try NamespaceThread.run { try NetlinkHost().link(named: "nope0") }
        #expect(found == nil)
    }

    @Test func bridgeHasMacMtuAndIsDown() throws {
        let br = try NamespaceThread.run { () throws -> LinkInfo? in
            let host = try NetlinkHost()
            try host.createBridge(name: "br-in", mac: mac, mtu: 1400)
            return try host.link(named: "br-in")
        }
        #expect(br?.kind == "bridge")
        #expect(br?.isBridge == true)
        #expect(br?.mac == mac)
        #expect(br?.mtu == 1400)
        #expect(br?.isUp == false)
        #expect(br?.masterIndex == 0)
    }

    @Test(.ipTool) func bridgeHasStpOffAndForwardDelayZero() throws {
        let json = try NamespaceThread.run { () throws -> [String: Any] in
            try NetlinkHost().createBridge(name: "br-in", mac: mac, mtu: 1400)
            return try Spawn.ipLink("br-in")
        }
        let info = json["linkinfo"] as? [String: Any]
        let data = info?["info_data"] as? [String: Any]
        #expect(info?["info_kind"] as? String == "bridge")
        #expect(data?["stp_state"] as? Int == 0)
        #expect(data?["forward_delay"] as? Int == 0)
        #expect(json["address"] as? String == "02:6b:76:6d:00:01")
        #expect(json["mtu"] as? Int == 1400)
    }

    @Test func duplicateBridgeIsExists() throws {
        let message = try NamespaceThread.run { () throws -> HostError? in
            let host = try NetlinkHost()
            try host.createBridge(name: "br-in", mac: mac, mtu: 1500)
            do { try host.createBridge(name: "br-in", mac: mac, mtu: 1500) } catch let e as HostError { return e }
            return nil
        }
        #expect(message == .exists("add bridge br-in: Object exists (libnl error -6)"))
    }

    @Test func bridgeOverAnExistingTapIsExists() throws {
        let (kindOfError, survivor) = try NamespaceThread.run { () throws -> (String, LinkInfo?) in
            let host = try NetlinkHost()
            try host.createTap(name: "br-in", owner: 0)
            let k = errorKind { try host.createBridge(name: "br-in", mac: mac, mtu: 1500) }
            return (k, try host.link(named: "br-in"))
        }
        #expect(kindOfError == "exists")
        #expect(survivor?.isTap == true)
    }

    @Test func tapIsAPersistentEthernetTun() throws {
        let tap = try NamespaceThread.run { () throws -> LinkInfo? in
            let host = try NetlinkHost()
            try host.createTap(name: "vnet0", owner: 4242)
            return try host.link(named: "vnet0")
        }
        #expect(tap?.kind == "tun")
        #expect(tap?.arpType == 1)
        #expect(tap?.isTap == true)
        #expect(tap?.isUp == false)
    }

    @Test(.ipTool) func tapOwnerAndPersistence() throws {
        let json = try NamespaceThread.run { () throws -> [String: Any] in
            try NetlinkHost().createTap(name: "vnet0", owner: 4242)
            return try Spawn.ipLink("vnet0")
        }
        let data = (json["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
        #expect(data?["type"] as? String == "tap")
        #expect(data?["pi"] as? Bool == false)
        #expect(data?["persist"] as? Bool == true)
        let user = data?["user"]
        #expect((user as? Int) == 4242 || (user as? String) == "4242", "ip reported user \(String(describing: user))")
    }

    @Test func duplicateTapIsExistsAndDoesNotAttach() throws {
        let kinds = try NamespaceThread.run { () throws -> [String] in
            let host = try NetlinkHost()
            try host.createTap(name: "vnet0", owner: 0)
            try host.createBridge(name: "br0", mac: mac, mtu: 1500)
            return [errorKind { try host.createTap(name: "vnet0", owner: 0) },
                    errorKind { try host.createTap(name: "br0", owner: 0) }]
        }
        #expect(kinds == ["exists", "exists"])
    }

    @Test func deleteLinkRemovesBridgeAndTap() throws {
        let names = try NamespaceThread.run { () throws -> [String] in
            let host = try NetlinkHost()
            try host.createBridge(name: "br0", mac: mac, mtu: 1500)
            try host.createTap(name: "vnet0", owner: 0)
            try host.deleteLink(name: "br0")
            try host.deleteLink(name: "vnet0")
            return try host.links().map(\.name)
        }
        #expect(names == ["lo"])
    }

    @Test func deletingAMissingLinkIsNotFound() throws {
        let error = try NamespaceThread.run { () throws -> HostError? in
            do { try NetlinkHost().deleteLink(name: "nope0") } catch let e as HostError { return e }
            return nil
        }
        guard case .notFound(let message) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(message.hasPrefix("delete link nope0: "))
    }

    @Test func setUpAndDown() throws {
        let states = try NamespaceThread.run { () throws -> [Bool?] in
            let host = try NetlinkHost()
            try host.createBridge(name: "br0", mac: mac, mtu: 1500)
            try host.setUp(name: "br0", true)
            let up = try host.link(named: "br0")?.isUp
            try host.setUp(name: "br0", true)   // idempotent
            try host.setUp(name: "br0", false)
            return [up, try host.link(named: "br0")?.isUp]
        }
        #expect(states == [true, false])
    }

    @Test func setMTU() throws {
        let mtu = try NamespaceThread.run { () throws -> UInt32? in
            let host = try NetlinkHost()
            try host.createTap(name: "vnet0", owner: 0)
            try host.setMTU(name: "vnet0", 9000)
            return try host.link(named: "vnet0")?.mtu
        }
        #expect(mtu == 9000)
    }

    @Test func changingAMissingLinkIsNotFound() throws {
        let kinds = try NamespaceThread.run { () throws -> [String] in
            let host = try NetlinkHost()
            try host.createTap(name: "vnet0", owner: 0)
            return [errorKind { try host.setUp(name: "nope0", true) },
                    errorKind { try host.setMTU(name: "nope0", 1400) },
                    errorKind { try host.setMaster(name: "nope0", bridge: nil) },
                    errorKind { try host.setMaster(name: "vnet0", bridge: "nobridge") }]
        }
        #expect(kinds == ["notFound", "notFound", "notFound", "notFound"])
    }

    @Test func setMasterAndNomaster() throws {
        let (bridgeIndex, enslaved, released) = try NamespaceThread.run { () throws -> (Int32?, Int32?, Int32?) in
            let host = try NetlinkHost()
            try host.createBridge(name: "br0", mac: mac, mtu: 1500)
            try host.createTap(name: "vnet0", owner: 0)
            try host.setMaster(name: "vnet0", bridge: "br0")
            let enslaved = try host.link(named: "vnet0")?.masterIndex
            try host.setMaster(name: "vnet0", bridge: nil)
            return (try host.link(named: "br0")?.index, enslaved, try host.link(named: "vnet0")?.masterIndex)
        }
        #expect(bridgeIndex != nil)
        #expect(enslaved == bridgeIndex)
        #expect(released == 0)
    }
}
