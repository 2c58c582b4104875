import CLibnl
import Glibc
@testable import KVMNetLinux
import KVMNetCore
import Testing

@Suite("Error funnels (no privilege needed)")
struct ErrorMappingTests {
    @Test("libnl codes map to typed errors", arguments: [
        (-NLE_EXIST, "exists"), (-NLE_NODEV, "notFound"), (-NLE_OBJ_NOTFOUND, "notFound"),
        (-NLE_PERM, "permission"), (-NLE_NOACCESS, "permission"), (-NLE_BUSY, "busy"),
        (-NLE_INVAL, "other"), (-NLE_NOADDR, "other"), (-NLE_FAILURE, "other"),
    ])
    func libnlCodes(code: Int32, expected: String) {
        #expect(kind(libnlError(code, "op")) == expected)
    }

    @Test func noAddressMeansMissingOnlyWhereAsked() {
        #expect(kind(libnlError(-NLE_NOADDR, "delete address", noAddressIsMissing: true)) == "notFound")
    }

    @Test func messageNamesOperationObjectAndCode() {
        #expect(libnlError(-NLE_EXIST, "add bridge br-in") == .exists("add bridge br-in: Object exists (libnl error -6)"))
        #expect(throws: HostError.exists("add bridge br-in: Object exists (libnl error -6)")) {
            try checkLibnl(-NLE_EXIST, "add bridge br-in")
        }
        #expect((try? checkLibnl(3, "x")) == 3)
    }

    @Test("errno values map to typed errors", arguments: [
        (EEXIST, "exists"), (ENOENT, "notFound"), (ENODEV, "notFound"), (EPERM, "permission"),
        (EACCES, "permission"), (EBUSY, "busy"), (EINVAL, "other"),
    ])
    func errnoValues(number: Int32, expected: String) {
        #expect(kind(errnoError(number, "op")) == expected)
    }

    @Test func errnoMessage() {
        #expect(errnoError(EEXIST, "add tap vnet0") == .exists("add tap vnet0: File exists (errno 17)"))
    }

    @Test("sysctl keys become paths", arguments: [
        ("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward"),
        ("net/ipv6/conf/vif1.0/disable_ipv6", "/proc/sys/net/ipv6/conf/vif1.0/disable_ipv6"),
        ("/net/ipv4/ip_forward", "/proc/sys/net/ipv4/ip_forward"),
    ])
    func sysctlPaths(key: String, path: String) throws {
        #expect(try ProcSysctl().path(for: key) == path)
    }

    @Test(arguments: ["", "net/../../etc/passwd", "..", "net.ipv4/./x"])
    func badSysctlKeys(key: String) {
        #expect(errorKind { _ = try ProcSysctl().path(for: key) } == "other")
    }

    @Test func sysctlInATemporaryTree() throws {
        let root = try TemporaryFolder()
        defer { root.remove() }
        try root.write("net/ipv4/ip_forward", "0\n")
        let store = ProcSysctl(root: root.path)
        #expect(try store.read("net.ipv4.ip_forward") == "0")
        try store.write("net.ipv4.ip_forward", "1")
        #expect(try store.read("net.ipv4.ip_forward") == "1")
        #expect(errorKind { _ = try store.read("net.ipv4.missing") } == "notFound")
    }

    @Test func capEffParsing() {
        #expect(Capabilities.effectiveMask(status: "Name:\tx\nCapInh:\t0\nCapEff:\t000001ffffffffff\n") == 0x1ff_ffff_ffff)
        #expect(Capabilities.effectiveMask(status: "Name:\tx\n") == nil)
        #expect(Capabilities.canAdministerNetwork() == (getuid() == 0))
    }

    @Test func wirelessProbe() throws {
        let root = try TemporaryFolder()
        defer { root.remove() }
        try root.mkdir("wlan0/wireless")
        try root.mkdir("wlp2s0/phy80211")
        try root.mkdir("eth0/statistics")
        let probe = SysfsProbe(root: root.path)
        #expect(probe.isWireless("wlan0"))
        #expect(probe.isWireless("wlp2s0"))
        #expect(!probe.isWireless("eth0"))
        #expect(!probe.isWireless("missing"))
        #expect(!probe.isWireless("../wlan0"))
        #expect(!SysfsProbe().isWireless("lo"))
    }

    @Test func enteringAMissingNamespaceFailsBeforeChangingAnything() {
        let name = "kvmnet-missing-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(throws: KVMNetError.failure("network namespace \(name) does not exist (ip netns add \(name))")) {
            try NetworkNamespace.enter(named: name)
        }
        #expect(throws: KVMNetError.self) { try NetworkNamespace.enter(named: "../etc") }
    }

    @Test func identityOfTheTestProcess() {
        let id = NetworkNamespace.currentIdentity()
        #expect(id.inode != 0)
    }
}

/// A folder under /tmp, removed by `remove()`.
struct TemporaryFolder {
    let path: String

    init() throws {
        var template = Array("/tmp/kvmnet-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HostError.other("mkdtemp: \(errno)") }
        path = String(cString: made)
    }

    func mkdir(_ relative: String) throws {
        var current = path
        for part in relative.split(separator: "/") {
            current += "/\(part)"
            if Glibc.mkdir(current, 0o755) != 0 && errno != EEXIST { throw HostError.other("mkdir \(current): \(errno)") }
        }
    }

    func write(_ relative: String, _ text: String) throws {
        let parent = relative.split(separator: "/").dropLast().joined(separator: "/")
        if !parent.isEmpty { try mkdir(parent) }
        let fd = open("\(path)/\(relative)", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw HostError.other("create \(relative): \(errno)") }
        defer { close(fd) }
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
    }

    func remove() {
        _ = try? Spawn.run(["rm", "-rf", "--", path])
    }
}

@Suite("/proc/net sockets (no privilege needed)")
struct ProcNetSocketTests {
    @Test func boundUnconnectedUdpOnly() {
        let udp = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
           101: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   991        0 4711 2 0000000000000000 0
           102: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4712 2 0000000000000000 0
           103: 0100A8C0:9C40 0101A8C0:0035 01 00000000:00000000 00:00000000 00000000     0        0 4713 2 0000000000000000 0
        """
        let u = ProcNetSocket.parse(udp)
        #expect(u.map(\.0) == [ProcNetSocket(address: "127.0.0.53", port: 53), ProcNetSocket(address: "0.0.0.0", port: 67)])
        #expect(u.map(\.1) == [4711, 4712])
        let udp6 = """
          sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
           0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 900 2 0000000000000000 0
           1: 000080FE00000000FF020000020000FE:0223 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 902 2 0000000000000000 0
        """
        #expect(ProcNetSocket.parse(udp6).map(\.0) == [ProcNetSocket(address: "::", port: 53), ProcNetSocket(address: "fe80::2ff:fe00:2", port: 547)])
    }
}
