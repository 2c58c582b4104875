import Foundation

/// A saved network definition: `<config-dir>/<NET>.json`, one JSON object whose keys mirror
/// `up`'s long options. Only options given are present.
public struct NetworkDefinition: Codable, Equatable, Sendable {
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    public var model: NetworkModel
    public var name: String?
    public var bridge: String?
    public var subnet: String?
    public var address: String?
    public var mtu: UInt32?
    public var uplink: String?
    public var taps: Int?
    public var tapOwner: String?
    public var firewall: String?
    public var force: Bool?
    public var forward: [String]?
    public var dhcp: String?
    public var dns: String?

    enum CodingKeys: String, CodingKey {
        case schemaVersion, model, name, bridge, subnet, address, mtu, uplink, taps, firewall, force, forward, dhcp, dns
        case tapOwner = "tap-owner"
    }

    public init(request r: UpRequest, tapOwner: String?) {
        schemaVersion = Self.currentSchemaVersion
        model = r.model
        name = r.name.rawValue
        bridge = r.bridge?.rawValue
        subnet = r.subnet?.description
        address = r.address?.description
        mtu = r.mtu
        uplink = r.uplink?.rawValue
        taps = r.taps
        self.tapOwner = tapOwner
        firewall = r.firewall?.rawValue
        force = r.force ? true : nil
        forward = r.forwards.isEmpty ? nil : r.forwards.map(\.description)
        dhcp = r.dhcp.map { $0 ? "on" : "off" }
        dns = r.dns.map { $0 ? "on" : "off" }
    }

    /// Parses and validates a definition file's text; errors name the file and the bad value (exit 64).
    public static func parse(_ data: Data, file: String) throws(KVMNetError) -> NetworkDefinition {
        let d: NetworkDefinition
        do { d = try JSONDecoder().decode(NetworkDefinition.self, from: data) } catch {
            throw .usage("\(file): not a kvmnet network definition: \(describe(error))")
        }
        guard d.schemaVersion <= currentSchemaVersion else {
            throw .usage("\(file): schemaVersion \(d.schemaVersion) is newer than this kvmnet understands (\(currentSchemaVersion))")
        }
        do { _ = try d.request() } catch { throw .usage("\(file): \(error.description)") }
        return d
    }

    /// The `up` request this definition describes.
    public func request() throws(KVMNetError) -> UpRequest {
        var r = UpRequest(model: model)
        if let n = name { r.name = try NetworkName(n) }
        if let b = bridge { r.bridge = try InterfaceName(b) }
        if let u = uplink { r.uplink = try InterfaceName(u) }
        if let s = subnet {
            guard let c = CIDRv4(s) else { throw .usage("invalid subnet '\(s)': expected an IPv4 prefix such as 192.168.1.0/24") }
            r.subnet = c
        }
        if let a = address {
            guard let ip = IPv4Address(a) else { throw .usage("invalid address '\(a)': expected an IPv4 address") }
            r.address = ip
        }
        r.mtu = mtu
        r.taps = taps
        if let f = firewall {
            guard let c = FirewallChoice(rawValue: f) else { throw .usage("invalid firewall backend '\(f)': choose auto, iptables or nftables") }
            r.firewall = c
        }
        for f in forward ?? [] { r.forwards.append(try PortForward.Request.parse(f)) }
        r.dhcp = try Self.onOff(dhcp, "dhcp")
        r.dns = try Self.onOff(dns, "dns")
        r.force = force ?? false
        try SpecResolver.validate(r)
        return r
    }

    static func onOff(_ v: String?, _ key: String) throws(KVMNetError) -> Bool? {
        switch v {
        case nil: return nil
        case "on": return true
        case "off": return false
        default: throw .usage("invalid value '\(v!)' for --\(key): use on or off")
        }
    }

    public func encoded() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? e.encode(self)) ?? Data()
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let k, _): return "the key '\(k.stringValue)' is missing"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "the value of '\(c.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
        case DecodingError.dataCorrupted(let c):
            let key = c.codingPath.map(\.stringValue).joined(separator: ".")
            return key.isEmpty ? "invalid JSON" : "the value of '\(key)' is invalid: \(c.debugDescription)"
        default: return "\(error)"
        }
    }
}

/// Network definitions in the config folder (`--config-dir`, env KVMNET_CONFIG_DIR, /etc/kvmnet).
public protocol DefinitionStore: AnyObject {
    var directory: String { get }
    /// The definition of `network`, or nil when it is not defined.
    func load(_ network: NetworkName) throws -> NetworkDefinition?
    func save(_ definition: NetworkDefinition, as network: NetworkName) throws
    /// Removes the definition and its hooks; false when there was none.
    func remove(_ network: NetworkName) throws -> Bool
    /// Reads a definition file given by path (`up --from FILE`).
    func read(file: String) throws -> NetworkDefinition
}

extension DefinitionStore {
    public func hooksFolder(_ network: NetworkName) -> String { "\(directory)/hooks/\(network)" }
}
