import Glibc
import KVMNetCore
import KVMNetLinux
import Testing

@Suite("Namespaces and /proc/sys", .root)
struct NamespaceTests {
    @Test func freshNamespaceIsNotRoot() throws {
        let outside = NetworkNamespace.currentIdentity()
        let inside = try NamespaceThread.run { NetworkNamespace.currentIdentity() }
        #expect(outside.isRoot)
        #expect(!inside.isRoot)
        #expect(inside.name == nil)
        #expect(inside.inode != outside.inode)
    }

    @Test func namespaceThreadRethrowsTheBodysError() {
        #expect(throws: HostError.busy("from the body")) {
            try NamespaceThread.run { throw HostError.busy("from the body") }
        }
    }

    @Test func sysctlReadsAndWritesTheNamespacesValues() throws {
        let outside = try ProcSysctl().read("net.ipv4.ip_forward")
        let (before, after, missing) = try NamespaceThread.run { () throws -> (String, String, String) in
            let sysctl = ProcSysctl()
            let before = try sysctl.read("net.ipv4.ip_forward")
            try sysctl.write("net.ipv4.ip_forward", before == "1" ? "0" : "1")
            return (before, try sysctl.read("net.ipv4.ip_forward"), errorKind { _ = try sysctl.read("net.ipv4.no_such_key") })
        }
        #expect(before != after)
        #expect(missing == "notFound")
        #expect(try ProcSysctl().read("net.ipv4.ip_forward") == outside)
    }

    @Test func sysctlKeyWithDottedInterfaceName() throws {
        let value = try NamespaceThread.run { () throws -> String in
            try NetlinkHost().createTap(name: "vif1.0", owner: 0)
            let sysctl = ProcSysctl()
            try sysctl.write("net/ipv6/conf/vif1.0/disable_ipv6", "1")
            return try sysctl.read("net/ipv6/conf/vif1.0/disable_ipv6")
        }
        #expect(value == "1")
    }

    /// `ip netns add` a namespace, enter it from a dedicated thread, and delete it again.
    @Test(.ipTool) func enterANamedNamespace() throws {
        let name = "kvmnet-test-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        try Spawn.check(["ip", "netns", "add", name])
        defer { _ = try? Spawn.run(["ip", "netns", "delete", name]) }
        try Spawn.check(["ip", "-n", name, "link", "add", "kvmtest0", "type", "bridge"])
        let (identity, sysfsSeesIt, links) = try NamespaceThread.run { () throws -> (NamespaceIdentity, Bool, [String]) in
            try NetworkNamespace.enter(named: name)
            return (NetworkNamespace.currentIdentity(),
                    access("/sys/class/net/kvmtest0", F_OK) == 0,
                    try NetlinkHost().links().map(\.name).sorted())
        }
        #expect(identity.name == name)
        #expect(!identity.isRoot)
        #expect(sysfsSeesIt)
        #expect(links == ["kvmtest0", "lo"])
        #expect(access("/sys/class/net/kvmtest0", F_OK) != 0, "the test process's /sys must be untouched")
    }
}
