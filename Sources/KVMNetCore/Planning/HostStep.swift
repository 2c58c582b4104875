/// One change `up` makes to the host, in the order the plan gives.
public enum HostStep: Equatable, Sendable {
    /// Creates the network's bridge (STP off, forward delay 0, MAC and MTU set).
    /// `group`: the link group of the network's taps, so that one request deletes them all.
    case createBridge(name: String, mac: MACAddress, mtu: UInt32, group: UInt32?)
    /// A per-device sysctl on a device kvmnet created; it goes away with the device.
    case setDeviceSysctl(key: String, value: String)
    /// A namespace-wide sysctl; its previous value is recorded and restored by `down`.
    case setSysctl(key: String, value: String)
    case addAddress(InterfaceAddress)
    case setUp(String)
    /// Creates a persistent tap owned by `owner`.
    case createTap(name: String, owner: UInt32)
    case setMTU(name: String, mtu: UInt32)
    /// Makes a tap kvmnet created a port of the bridge, with the bridge's MTU, in the network's
    /// link group (deleted as one on `down`), up: one request.
    case attach(port: String, bridge: String, mtu: UInt32, group: UInt32)
    /// Makes `port` a port of `bridge`. `recorded` for links kvmnet did not create (the uplink).
    case enslave(port: String, bridge: String, recorded: Bool)
    /// Takes a route off an interface kvmnet did not create (bridged: the uplink); `down` puts it back.
    case removeRoute(RouteInfo)
    /// Takes an address off an interface kvmnet did not create; `down` puts it back.
    case removeAddress(InterfaceAddress)
    case addRoute(RouteInfo)
    /// Installs the network's firewall chains and jumps in one transaction.
    case installFirewall(FirewallPlan)
    /// Writes dnsmasq's config and starts it (restarts it when the config changed).
    case startDnsmasq(DnsmasqPlan)

    /// Steps that may run while earlier steps' work goes on in another process (the firewall
    /// transaction, dnsmasq starting): they neither need it finished nor change what it reads.
    /// Every other step waits for that work first (forwarding, for one, only once the rules are in).
    public var overlapsBackgroundWork: Bool {
        switch self {
        case .createTap, .attach, .installFirewall, .startDnsmasq: return true
        default: return false
        }
    }

    /// The command a person would type for this step.
    public var command: String {
        switch self {
        case .createBridge(let n, let mac, let mtu, let group):
            return "ip link add \(n) address \(mac) mtu \(mtu)" + (group.map { " group \($0)" } ?? "") + " type bridge stp_state 0 forward_delay 0"
        case .setDeviceSysctl(let k, let v), .setSysctl(let k, let v):
            return "sysctl -w \(k)=\(v)"
        case .addAddress(let a):
            return "ip addr add \(a.address)/\(a.prefixLength)" + (a.broadcast.map { " broadcast \($0)" } ?? "")
                + (a.flags & AddressFlags.noPrefixRoute != 0 ? " noprefixroute" : "") + " dev \(a.interface)"
        case .setUp(let n):
            return "ip link set \(n) up"
        case .createTap(let n, let owner):
            return "ip tuntap add \(n) mode tap user \(owner)"
        case .setMTU(let n, let mtu):
            return "ip link set \(n) mtu \(mtu)"
        case .attach(let p, let b, let mtu, let g):
            return "ip link set \(p) mtu \(mtu) master \(b) group \(g) up"
        case .enslave(let p, let b, _):
            return "ip link set \(p) master \(b)"
        case .removeRoute(let r):
            return "ip \(r.family == .inet6 ? "-6 " : "")route del \(r)"
        case .removeAddress(let a):
            return "ip addr del \(a.address)/\(a.prefixLength) dev \(a.interface)"
        case .addRoute(let r):
            return "ip \(r.family == .inet6 ? "-6 " : "")route add \(r)"
        case .installFirewall(let plan):
            return plan.command
        case .startDnsmasq(let d):
            return "cat > \(d.confPath) <<EOF\n\(d.conf)EOF\n" + d.argv.joined(separator: " ")
        }
    }

    /// A short name for the step in progress and error messages.
    public var summary: String {
        switch self {
        case .createBridge(let n, _, _, _): return "create bridge \(n)"
        case .setDeviceSysctl(let k, let v), .setSysctl(let k, let v): return "set \(k)=\(v)"
        case .addAddress(let a): return "add address \(a)"
        case .setUp(let n): return "bring \(n) up"
        case .createTap(let n, _): return "create tap \(n)"
        case .setMTU(let n, let m): return "set MTU \(m) on \(n)"
        case .attach(let p, let b, _, _): return "attach \(p) to \(b)"
        case .enslave(let p, let b, _): return "attach \(p) to \(b)"
        case .removeRoute(let r): return "remove route \(r)"
        case .removeAddress(let a): return "remove address \(a)"
        case .addRoute(let r): return "add route \(r)"
        case .installFirewall(let p): return "install \(p.backend) rules for \(p.spec.name)"
        case .startDnsmasq: return "start dnsmasq (DHCP/DNS) on the bridge"
        }
    }
}
