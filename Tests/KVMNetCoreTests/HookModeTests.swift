import Foundation
import Testing
import KVMNetTestSupport
@testable import KVMNetCore

/// Definitions, lazy networks brought up by hooks, reaping, crash recovery — against the fake host.
@Suite struct HookModeTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Examples")

    @Test(arguments: NetworkModel.allCases)
    func everyExampleParsesAndPlans(_ model: NetworkModel) throws {
        let file = Self.examples.appendingPathComponent("\(model).json")
        let d = try NetworkDefinition.parse(try Data(contentsOf: file), file: file.path)
        #expect(d.model == model)
        let host = FakeHost.sandbox()
        let steps = try NetworkDriver(env: host.environment).plan(try d.request()).steps
        #expect(steps.contains { if case .createBridge = $0 { return true } else { return false } })
    }

    @Test func definitionsRoundTripAndNameBadValues() throws {
        var r = UpRequest(model: .nat)
        r.name = try NetworkName("lab")
        r.subnet = CIDRv4("10.7.0.0/24")
        r.taps = 2
        let d = NetworkDefinition(request: r, tapOwner: "nobody")
        let text = String(decoding: d.encoded(), as: UTF8.self)
        #expect(text.contains("\"tap-owner\" : \"nobody\""))
        #expect(!text.contains("bridge"), "only options given are written")
        #expect(try NetworkDefinition.parse(d.encoded(), file: "lab.json") == d)
        for (bad, message) in [(#"{"schemaVersion":1,"model":"mesh"}"#, "model"),
                               (#"{"schemaVersion":1,"model":"nat","subnet":"10.0.0.0/33"}"#, "invalid subnet '10.0.0.0/33'"),
                               (#"{"schemaVersion":9,"model":"nat"}"#, "schemaVersion 9"),
                               (#"{"model":"nat"}"#, "'schemaVersion' is missing"),
                               ("not json", "not a kvmnet network definition")] {
            #expect { try NetworkDefinition.parse(Data(bad.utf8), file: "x.json") } throws: {
                let e = $0 as? KVMNetError
                return e?.exitCode == 64 && e!.description.contains("x.json") && e!.description.contains(message)
            }
        }
    }

    func defined(_ host: FakeHost, _ model: NetworkModel = .nat) throws -> NetworkDriver {
        try host.definitions.save(NetworkDefinition(request: UpRequest(model: model), tapOwner: nil), as: .default)
        return NetworkDriver(env: host.environment)
    }

    @Test func firstIfupBringsADefinedNetworkUpAndTheLastIfdownTakesItDown() throws {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        let driver = try defined(host)
        let taps = (1...16).map { "tap\($0)" }
        for t in taps { host.addLink(t, kind: "tun") }
        for t in taps { try driver.hookUp(tap: t, network: .default) }
        #expect(host.linkTable.filter(\.isBridge).count == 1)
        #expect(host.nftTables["inet kvmnet"]?.chains.filter { $0.name == "nat-default" }.count == 1)
        let br = host.linkTable.first { $0.name == "br-in" }!
        #expect(host.linkTable.filter { $0.masterIndex == br.index }.count == 16)
        #expect(try host.load(.default)?.lazy == true)
        for t in taps.dropLast() { try driver.hookDown(tap: t, network: .default) }
        #expect(try host.load(.default) != nil, "still one tap")
        try driver.hookDown(tap: taps.last!, network: .default)
        #expect(try host.load(.default) == nil)
        #expect(host.linkTable.allSatisfy { $0.masterIndex == 0 })
        // qemu closes its taps after ifdown; then the host is as before.
        for t in taps { try host.deleteLink(name: t) }
        #expect(host.snapshot() == before)
    }

    @Test func aNetworkBroughtUpByKvmnetUpStays() throws {
        let host = FakeHost.sandbox()
        let driver = try defined(host)
        host.addLink("tap1", kind: "tun")
        _ = try driver.up(UpRequest(model: .nat))
        try driver.hookUp(tap: "tap1", network: .default)
        try driver.hookDown(tap: "tap1", network: .default)
        #expect(try host.load(.default) != nil)
        // `kvmnet up` on a lazy network makes it permanent.
        let other = FakeHost.sandbox()
        let d2 = try defined(other)
        other.addLink("tap1", kind: "tun")
        try d2.hookUp(tap: "tap1", network: .default)
        _ = try d2.up(UpRequest(model: .nat))
        #expect(try other.load(.default)?.lazy == nil)
    }

    @Test func ifupForAnUndefinedNetworkNamesIt() throws {
        let host = FakeHost.sandbox()
        host.addLink("tap1", kind: "tun")
        #expect { try NetworkDriver(env: host.environment).hookUp(tap: "tap1", network: try NetworkName("lab")) } throws: {
            ($0 as? KVMNetError)?.description.contains("network lab is neither up nor defined") == true
        }
        #expect(host.linkTable.filter(\.isBridge).isEmpty)
    }

    @Test func aLazyNetworkWhoseTapsAreGoneIsReaped() throws {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        let driver = try defined(host)
        host.addLink("tap1", kind: "tun")
        try driver.hookUp(tap: "tap1", network: .default)
        // qemu was SIGKILLed: its tap vanished and ifdown never ran.
        try host.deleteLink(name: "tap1")
        let status = try driver.status()
        #expect(status.isEmpty, "status reaps it")
        #expect(host.snapshot() == before)
    }

    @Test func aTapHeldByALiveProcessSurvivesDown() throws {
        let host = FakeHost.sandbox()
        let before = host.snapshot()
        let driver = NetworkDriver(env: host.environment)
        var r = UpRequest(model: .isolated)
        r.taps = 2
        _ = try driver.up(r)
        host.heldTaps["vif1.0"] = (4242, "qemu-system-x86")
        #expect { try driver.down(.default) } throws: {
            let m = ($0 as? KVMNetError)?.description ?? ""
            return m.contains("tap vif1.0 is held by pid 4242 (qemu-system-x86)")
        }
        #expect(host.linkTable.contains { $0.name == "vif1.0" })
        #expect(!host.linkTable.contains { $0.name == "br-in" || $0.name == "vif2.0" })
        #expect(try host.load(.default)?.journal == [.createdLink(name: "vif1.0", kind: "tun")])
        host.heldTaps = [:]
        _ = try driver.down(.default)
        #expect(host.snapshot() == before)
    }
}
