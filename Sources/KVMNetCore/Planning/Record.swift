/// One change kvmnet made to the host, with what is needed to undo exactly it.
/// Written to the record *before* the change is made, so a killed `up` leaves a record
/// `down` can finish; undoing an entry whose change never happened is harmless.
public enum JournalEntry: Codable, Equatable, Sendable {
    /// A link kvmnet created (bridge or tap). Undo: delete it.
    case createdLink(name: String, kind: String)
    /// A sysctl kvmnet wrote. Undo: write `previous` back, unless someone changed it since.
    case changedSysctl(key: String, previous: String, value: String)
    /// An address kvmnet added. Undo: delete it.
    case addedAddress(InterfaceAddress)
    /// A route kvmnet added. Undo: delete it.
    case addedRoute(RouteInfo)
    /// An address kvmnet took off an interface (bridged: the uplink). Undo: add it back.
    case removedAddress(InterfaceAddress)
    /// A route kvmnet took off (bridged: the uplink's). Undo: add it back.
    case removedRoute(RouteInfo)
    /// A link kvmnet made a port of a bridge it did not delete with the bridge (the uplink). Undo: nomaster.
    case enslaved(port: String, bridge: String)
    /// Firewall objects kvmnet installed. Undo: remove exactly them.
    case firewall(FirewallRecord)
    /// A daemon kvmnet started (dnsmasq). Undo: stop it, only if its pid, start time and command
    /// line still match.
    case startedDaemon(DaemonRecord)
}

/// A daemon kvmnet started, as recorded.
public struct DaemonRecord: Codable, Equatable, Sendable {
    public var name: String
    /// Its config file: its command line must name it.
    public var conf: String
    public var pidfile: String
    public var pid: Int32?
    public var startTime: UInt64?

    public init(name: String, conf: String, pidfile: String, pid: Int32? = nil, startTime: UInt64? = nil) {
        self.name = name; self.conf = conf; self.pidfile = pidfile; self.pid = pid; self.startTime = startTime
    }
}

/// Firewall objects of one network, for one backend.
public struct FirewallRecord: Codable, Equatable, Sendable {
    public var backend: FirewallBackend
    /// Chains kvmnet owns, as "table:chain".
    public var chains: [String]
    /// Jumps kvmnet added to chains it does not own.
    public var jumps: [FirewallJump]

    public init(backend: FirewallBackend, chains: [String], jumps: [FirewallJump]) {
        self.backend = backend; self.chains = chains; self.jumps = jumps
    }
}

/// A rule in a chain kvmnet does not own that jumps to one kvmnet does.
public struct FirewallJump: Codable, Equatable, Hashable, Sendable {
    public var table: String
    public var from: String
    /// The rule's specification after the chain name, as iptables-save prints it.
    public var rule: String

    public init(table: String, from: String, rule: String) {
        self.table = table; self.from = from; self.rule = rule
    }
}

/// Everything kvmnet knows about one network it brought up: the resolved spec and the journal.
public struct NetworkRecord: Codable, Equatable, Sendable {
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    public var spec: NetworkSpec
    public var namespace: NamespaceIdentity
    /// Changes made, in order. `down` undoes them in reverse.
    public var journal: [JournalEntry]
    /// True once `up` finished; false while it runs, or when it was killed.
    public var complete: Bool
    /// Guests kvmnet launched on this network.
    public var guests: [GuestRecord]?
    /// Taps that hooks attached to the bridge (created by qemu, not by kvmnet).
    public var hookTaps: [String]?
    /// The link group kvmnet's taps of this network are in (`down` deletes them as one).
    public var tapGroup: UInt32?
    /// Port forwards into the network (nat).
    public var forwards: [PortForward]?
    /// Why this firewall backend was chosen (for `status`).
    public var firewallReason: String?
    /// Brought up by a hook (a defined network's first ifup): its last ifdown takes it down.
    /// `kvmnet up` clears it: such a network stays until `kvmnet down`.
    public var lazy: Bool?

    public init(spec: NetworkSpec, namespace: NamespaceIdentity, journal: [JournalEntry] = [], complete: Bool = false) {
        self.schemaVersion = Self.currentSchemaVersion
        self.spec = spec; self.namespace = namespace; self.journal = journal; self.complete = complete
    }

    public var name: NetworkName { spec.name }
}
