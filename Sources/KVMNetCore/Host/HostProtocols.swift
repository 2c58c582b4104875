/// Links, addresses and routes of the current network namespace (rtnetlink, through libnl).
///
/// Create calls throw `HostError.exists` when the object is there already; delete calls throw
/// `HostError.notFound` when it is not: callers decide what to tolerate. Needs CAP_NET_ADMIN
/// for every change; reading works unprivileged.
public protocol LinkControl: AnyObject {
    /// Every link of the namespace. Equals `ip -d link show`.
    func links() throws -> [LinkInfo]
    /// One link by name, or nil. Equals `ip -d link show dev NAME`.
    func link(named name: String) throws -> LinkInfo?
    /// Creates a bridge with STP off and forward delay 0, its MAC and MTU set, down, in link
    /// group `group` when given. Equals `ip link add NAME address MAC mtu MTU [group G] type bridge
    /// stp_state 0 forward_delay 0`. Throws `exists` when any link of that name exists (NLM_F_EXCL).
    func createBridge(name: String, mac: MACAddress, mtu: UInt32, group: UInt32?) throws
    /// Creates a persistent tap owned by `owner` (uid). Equals `ip tuntap add NAME mode tap user UID`.
    func createTap(name: String, owner: UInt32) throws
    /// Deletes a link. Equals `ip link del NAME`. Throws `notFound` when there is none.
    func deleteLink(name: String) throws
    /// Changes several attributes of a link in one request.
    /// Equals `ip link set NAME [mtu M] [master B | nomaster] [group G] [up | down]`.
    func setLink(_ name: String, _ change: LinkChange) throws
    /// Deletes every link of a link group in one request (one kernel barrier for all).
    /// Equals `ip link del group G`.
    func deleteLinks(group: UInt32) throws
    /// Every address of the namespace (both families). Equals `ip addr show`.
    func addresses() throws -> [InterfaceAddress]
    /// Equals `ip addr add ADDR/LEN [broadcast B] [noprefixroute] dev IF`. Throws `exists`.
    func addAddress(_ address: InterfaceAddress) throws
    /// Equals `ip addr del ADDR/LEN dev IF`. Throws `notFound`.
    func deleteAddress(_ address: InterfaceAddress) throws
    /// Unicast routes of every table but `local` (both families; no cached routes), with their
    /// table, metrics and onlink flag. Equals `ip route show table all` less the local table.
    func routes() throws -> [RouteInfo]
    /// Equals `ip route add DST [via GW] dev IF table T metric M proto P scope S [src SRC]
    /// [mtu N …] [onlink]`. Throws `exists`.
    func addRoute(_ route: RouteInfo) throws
    /// Equals `ip route del DST [via GW] dev IF table T metric M`. Throws `notFound`.
    func deleteRoute(_ route: RouteInfo) throws
    /// Links, addresses and routes at once (addresses and routes name their links from the same
    /// link dump). Equals `ip link; ip addr; ip route show table all`.
    func dump() throws -> (links: [LinkInfo], addresses: [InterfaceAddress], routes: [RouteInfo])
}

/// What `setLink` changes; nil leaves an attribute as it is.
public struct LinkChange: Equatable, Sendable {
    public var mtu: UInt32?
    /// .some(nil) detaches the link from its bridge.
    public var master: String??
    public var group: UInt32?
    public var up: Bool?

    public init(mtu: UInt32? = nil, master: String?? = nil, group: UInt32? = nil, up: Bool? = nil) {
        self.mtu = mtu; self.master = master; self.group = group; self.up = up
    }
}

extension LinkControl {
    public func dump() throws -> (links: [LinkInfo], addresses: [InterfaceAddress], routes: [RouteInfo]) {
        (try links(), try addresses(), try routes())
    }
    /// Equals `ip link set NAME up|down`.
    public func setUp(name: String, _ up: Bool) throws { try setLink(name, LinkChange(up: up)) }
    /// Equals `ip link set NAME mtu MTU`.
    public func setMTU(name: String, _ mtu: UInt32) throws { try setLink(name, LinkChange(mtu: mtu)) }
    /// Equals `ip link set NAME master BRIDGE`, or `nomaster` when `bridge` is nil.
    public func setMaster(name: String, bridge: String?) throws { try setLink(name, LinkChange(master: .some(bridge))) }
}

/// Kernel parameters under /proc/sys of the current namespace.
public protocol SysctlStore: AnyObject {
    /// Reads a key such as `net.ipv4.ip_forward` (dots, or slashes for keys whose parts hold dots:
    /// `net/ipv6/conf/vif1.0/disable_ipv6`). Returns the trimmed value. Throws `notFound`.
    func read(_ key: String) throws -> String
    /// Writes a value. Equals `sysctl -w KEY=VALUE`.
    func write(_ key: String, _ value: String) throws
}

/// Runs programs (iptables, nft, qemu-img) with an argv array, never a shell string.
public protocol CommandRunner: AnyObject {
    /// Runs `argv` to completion, feeding `stdin`. Throws `notFound` when the program is missing.
    func run(_ argv: [String], stdin: String?) throws -> CommandResult
    /// The full path of `program` found in PATH, or nil. Runs nothing.
    func which(_ program: String) -> String?
    /// Starts `argv` with `stdin` and returns without waiting for it: the caller goes on with
    /// other work and calls `finish()` later. Throws `notFound` when the program is missing.
    func start(_ argv: [String], stdin: String?) throws -> any StartedCommand
}

/// A program `CommandRunner.start` started; `finish()` waits for it.
public protocol StartedCommand {
    func finish() throws -> CommandResult
}

extension CommandRunner {
    /// Runs `argv` to completion at once: a runner that cannot overlap programs.
    public func start(_ argv: [String], stdin: String?) throws -> any StartedCommand {
        FinishedCommand(result: try run(argv, stdin: stdin))
    }
}

/// A program that has already run.
public struct FinishedCommand: StartedCommand {
    public var result: CommandResult
    public func finish() -> CommandResult { result }
}

/// Facts about interfaces that netlink does not tell, read from sysfs.
public protocol InterfaceProbe: AnyObject {
    /// True for wireless station interfaces (sysfs `wireless/` or `phy80211`), which cannot be bridged.
    func isWireless(_ name: String) -> Bool
    /// The processes of this namespace holding each of `names` open (`iff:` lines in
    /// /proc/PID/fdinfo), read in one walk of /proc.
    func tapHolders(_ names: Set<String>) -> [String: [(pid: Int32, command: String)]]
    /// The UDP sockets of this namespace bound (unconnected, as servers are) to `ports`,
    /// with the program holding each. Equals `ss -H -l -n -u -p 'sport = :P or ...'`.
    func listeners(ports: Set<Int>) -> [FirewallFacts.Listener]
}

/// The records of kvmnet's networks in the state folder.
public protocol StateStore: AnyObject {
    /// The folder for a network's record, hooks and guest files.
    func folder(for network: NetworkName) -> String
    func load(_ network: NetworkName) throws -> NetworkRecord?
    /// Writes the record atomically (write to a temporary file, fsync, rename).
    func save(_ record: NetworkRecord) throws
    /// Removes the network's folder and everything in it.
    func remove(_ network: NetworkName) throws
    /// Every network recorded for the current namespace.
    func all() throws -> [NetworkRecord]
    /// Holds an exclusive lock over the state folder while `body` runs (flock), so two kvmnet
    /// processes never change the same host at once.
    func withLock<T>(_ body: () throws -> T) throws -> T
}

/// Everything kvmnet does to the host goes through these; `main` builds the live one,
/// tests build `FakeHost`.
public struct HostEnvironment {
    public var links: any LinkControl
    public var sysctl: any SysctlStore
    public var commands: any CommandRunner
    public var probe: any InterfaceProbe
    public var state: any StateStore
    /// Identity of the network namespace the command runs in (recorded, and checked by later commands).
    public var namespace: NamespaceIdentity
    /// Whether the process may change the network (root or CAP_NET_ADMIN).
    public var canAdministerNetwork: Bool
    /// Where notices and progress go (stderr in the real program).
    public var log: (String) -> Void
    /// The signal (SIGINT, SIGTERM) received since the command started, if any.
    public var pendingSignal: () -> Int32? = { nil }
    /// Resolves a user name or numeric uid (for `--tap-owner`).
    public var userID: (String) -> UInt32? = { UInt32($0) }
    /// QEMU guests; nil where guests cannot run.
    public var guests: (any GuestControl)? = nil
    /// The state folder given on the command line, pinned into generated hooks.
    public var stateDir: String = "/run/kvmnet"
    /// Saved network definitions; nil where there is no config folder.
    public var definitions: (any DefinitionStore)? = nil
    /// The config folder, pinned into the hooks `define` writes.
    public var configDir: String { definitions?.directory ?? "/etc/kvmnet" }

    public init(links: any LinkControl, sysctl: any SysctlStore, commands: any CommandRunner,
                probe: any InterfaceProbe, state: any StateStore, namespace: NamespaceIdentity,
                canAdministerNetwork: Bool, log: @escaping (String) -> Void) {
        self.links = links; self.sysctl = sysctl; self.commands = commands; self.probe = probe
        self.state = state; self.namespace = namespace
        self.canAdministerNetwork = canAdministerNetwork; self.log = log
    }
}

/// Which network namespace a record belongs to.
public struct NamespaceIdentity: Hashable, Codable, Sendable, CustomStringConvertible {
    /// The name under /run/netns, or nil for the root namespace or an unnamed one.
    public var name: String?
    /// The namespace's inode number (`stat -L /proc/self/ns/net`).
    public var inode: UInt64
    public var isRoot: Bool

    public init(name: String?, inode: UInt64, isRoot: Bool) {
        self.name = name; self.inode = inode; self.isRoot = isRoot
    }

    public var description: String {
        if isRoot { return "the root namespace" }
        if let n = name { return "namespace \(n)" }
        return "namespace inode \(inode)"
    }
}
