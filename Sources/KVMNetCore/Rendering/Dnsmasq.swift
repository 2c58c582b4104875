/// One dnsmasq per routed or nat network, bound to its bridge only: DHCP with a static entry for
/// every guest kvmnet launches (in the conf file, which dnsmasq reads before dropping root, so a
/// 0700 state folder cannot hide them) and a dynamic range above them for guests started by
/// users with the hooks; DNS for the network's domain `NET.kvmnet`.
public struct DnsmasqPlan: Codable, Equatable, Sendable {
    public var conf: String
    public var confPath: String
    public var pidfile: String
    public var leasefile: String

    public var argv: [String] { ["dnsmasq", "--conf-file=\(confPath)"] }

    /// The first static guest's DNS name, its address and the server's, to check they are served.
    public var firstStaticName: (String, String, String)? {
        guard let line = conf.split(separator: "\n").first(where: { $0.hasPrefix("host-record=") }) else { return nil }
        let f = line.dropFirst("host-record=".count).split(separator: ",").map(String.init)
        guard f.count >= 3, let server = serverAddress else { return nil }
        return (f[0], f[2], server)
    }

    /// The bridge address dnsmasq answers on.
    var serverAddress: String?

    /// - Parameters:
    ///   - guests: the guests with a static entry (their MAC, address and name).
    ///   - user: the user dnsmasq drops root to (`dnsmasq` from dnsmasq-base, else `nobody`).
    public init(spec: NetworkSpec, guests: [GuestSpec], folder: String, user: String) {
        confPath = folder + "/dnsmasq.conf"
        serverAddress = spec.hostAddress?.address.description
        pidfile = folder + "/dnsmasq.pid"
        leasefile = folder + "/dnsmasq.leases"
        let net = spec.name.rawValue
        let domain = "\(net).kvmnet"
        var lines = ["# dnsmasq of kvmnet network \(net) (\(spec.model)), written by `kvmnet up`: changes are lost.",
                     "interface=\(spec.bridge)", "bind-dynamic", "except-interface=lo", "strict-order", "no-hosts",
                     "pid-file=\(pidfile)", "user=\(user)", "domain=\(domain)", "local=/\(domain)/"]
        if !spec.servesDNS { lines.append("port=0") }
        if spec.servesDHCP, let subnet = spec.subnet?.subnet, let host = spec.hostAddress?.address {
            let (first, last) = Self.dynamicRange(subnet: subnet, host: host)
            let mask = IPv4Address(subnet.mask)
            lines += ["dhcp-range=\(first),\(last),\(mask),1h", "dhcp-authoritative", "dhcp-leasefile=\(leasefile)", "no-ping"]
            // An isolated network has no router: an empty option stops dnsmasq offering itself.
            lines.append(spec.model == .isolated ? "dhcp-option=option:router" : "dhcp-option=option:router,\(host)")
            if spec.servesDNS { lines.append("dhcp-option=option:dns-server,\(host)") }
            // busybox udhcpc never asks for the MTU: force it.
            if spec.mtu != 1500 { lines.append("dhcp-option-force=option:mtu,\(spec.mtu)") }
            for g in guests {
                guard let a = g.address else { continue }
                lines.append("dhcp-host=\(g.mac),\(a.address),\(g.name)")
            }
        }
        if spec.servesDNS {
            for g in guests {
                guard let a = g.address else { continue }
                lines.append("host-record=\(g.name).\(domain),\(g.name),\(a.address)")
            }
        }
        conf = lines.joined(separator: "\n") + "\n"
    }

    /// Static entries take the low host numbers (the seed's .1, .2, …); the dynamic range lies
    /// above them: from the middle of the subnet (at most .100) to its end, the host's address aside.
    public static func dynamicRange(subnet: CIDRv4, host: IPv4Address) -> (IPv4Address, IPv4Address) {
        let first = subnet.firstHost.value, last = subnet.lastHost.value
        let start = first + min(99, (last - first + 1) / 2)
        var end = last
        if end == host.value { end -= 1 }
        return (IPv4Address(start), IPv4Address(max(start, end)))
    }
}

extension NetworkSpec {
    /// DHCP: on by default for routed and nat; on an isolated network only with `--dhcp on`
    /// (libvirt's isolated semantics); never for bridged (a rogue server on the LAN).
    public var servesDHCP: Bool {
        switch model {
        case .routed, .nat: return dhcp ?? true
        case .isolated: return dhcp == true
        case .bridged: return false
        }
    }
    /// DNS for the network's names: with DHCP unless `--dns off`.
    public var servesDNS: Bool {
        switch model {
        case .routed, .nat: return dns ?? true
        case .isolated: return (dhcp == true || dns == true) && dns != false
        case .bridged: return false
        }
    }
    /// Whether the network runs a dnsmasq at all.
    public var runsDnsmasq: Bool { servesDHCP || servesDNS }
}
