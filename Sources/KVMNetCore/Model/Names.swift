/// A Linux network interface name: 1–15 bytes (IFNAMSIZ - 1), no `/`, `:` or white space,
/// not `.` or `..`, as the kernel's `dev_valid_name` requires.
public struct InterfaceName: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public static let maxBytes = 15

    /// Validates `text`; the error quotes the value and the rule it broke.
    public init(_ text: String) throws(KVMNetError) {
        let n = text.utf8.count
        if n == 0 { throw .usage("interface name must not be empty") }
        if n > Self.maxBytes {
            throw .usage("interface name '\(text)' is \(n) bytes long; Linux allows at most \(Self.maxBytes)")
        }
        if text == "." || text == ".." { throw .usage("'\(text)' is not a valid interface name") }
        if let bad = text.unicodeScalars.first(where: { $0 == "/" || $0 == ":" || $0.properties.isWhitespace || $0.value < 0x20 }) {
            throw .usage("interface name '\(text)' contains '\(bad.escaped(asASCII: true))', which Linux does not allow")
        }
        rawValue = text
    }

    /// For names kvmnet derived itself and knows to be valid.
    public init(trusted text: String) {
        precondition(text.utf8.count <= Self.maxBytes && !text.isEmpty)
        rawValue = text
    }

    public var description: String { rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try InterfaceName(text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// A kvmnet network name: `[a-z0-9][a-z0-9-]{0,11}`. It ends up in chain, file and device names.
public struct NetworkName: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public static let `default` = NetworkName(trusted: "default")

    public init(_ text: String) throws(KVMNetError) {
        let bytes = Array(text.utf8)
        func ok(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) }
        guard (1...12).contains(bytes.count), ok(bytes[0]),
              bytes.dropFirst().allSatisfy({ ok($0) || $0 == 0x2d }) else {
            throw .usage("invalid network name '\(text)': use 1–12 characters of a-z, 0-9 and '-', starting with a letter or digit")
        }
        rawValue = text
    }

    init(trusted: String) { rawValue = trusted }

    public var description: String { rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try NetworkName(text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    /// The bridge this network uses unless `--bridge` names another: `br-in` for `default`
    /// (the seed's name), `kb-<name>` for the others.
    public var defaultBridge: InterfaceName {
        InterfaceName(trusted: self == .default ? "br-in" : "kb-" + rawValue)
    }

    /// The name of guest tap `index` (1-based): `vif1.0`, `vif2.0`, … for `default` (the seed's
    /// names); `<prefix>v<index>` for the others, where a name too long to leave room for the
    /// index is shortened to five characters, `_` and three hex digits of its hash (`_` never
    /// appears in a network name, so a shortened prefix cannot equal another network's).
    public func tapName(_ index: Int) -> InterfaceName {
        precondition(index >= 1 && index <= 9999)
        if self == .default { return InterfaceName(trusted: "vif\(index).0") }
        var prefix = rawValue
        if prefix.utf8.count > 10 {
            let h = String(StableHash.fnv1a64(rawValue) & 0xfff, radix: 16)
            prefix = String(rawValue.prefix(5)) + "_" + String(repeating: "0", count: 3 - h.count) + h
        }
        return InterfaceName(trusted: prefix + "v\(index)")
    }

    /// Suffix for iptables chain names: upper-case, at most 12 characters.
    public var chainSuffix: String { rawValue.uppercased() }
}
