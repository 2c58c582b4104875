/// An IPv4 address as a 32-bit value in host byte order.
public struct IPv4Address: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// Parses dotted-quad text ("192.168.1.254"); nil when it is not exactly four numbers 0–255.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            // No leading zeros: "010" reads as octal to some tools and as decimal to others.
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }),
                  p.count == 1 || p.first != "0", let n = UInt32(p), n <= 255 else { return nil }
            v = v << 8 | n
        }
        value = v
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    public static func < (a: Self, b: Self) -> Bool { a.value < b.value }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let a = IPv4Address(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad IPv4 address \(text)"))
        }
        self = a
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// An IPv4 prefix such as 192.168.1.0/24, optionally naming a host inside it (192.168.1.254/24).
public struct CIDRv4: Hashable, Codable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    public var prefixLength: Int

    public init(address: IPv4Address, prefixLength: Int) {
        precondition((0...32).contains(prefixLength))
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses "A.B.C.D/N"; a bare address is not accepted.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = IPv4Address(String(parts[0])),
              parts[1].count <= 2, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
              let n = Int(parts[1]), (0...32).contains(n) else { return nil }
        self.init(address: a, prefixLength: n)
    }

    public var mask: UInt32 { prefixLength == 0 ? 0 : UInt32.max << (32 - UInt32(prefixLength)) }
    public var network: IPv4Address { IPv4Address(address.value & mask) }
    public var broadcast: IPv4Address { IPv4Address(network.value | ~mask) }
    /// The subnet itself, with the host bits cleared.
    public var subnet: CIDRv4 { CIDRv4(address: network, prefixLength: prefixLength) }
    public var firstHost: IPv4Address { prefixLength >= 31 ? network : IPv4Address(network.value + 1) }
    public var lastHost: IPv4Address { prefixLength >= 31 ? broadcast : IPv4Address(broadcast.value - 1) }

    public func contains(_ a: IPv4Address) -> Bool { a.value & mask == network.value }

    public func overlaps(_ other: CIDRv4) -> Bool {
        let m = prefixLength < other.prefixLength ? mask : other.mask
        return address.value & m == other.address.value & m
    }

    /// The same address with another prefix length.
    public func with(address: IPv4Address) -> CIDRv4 { CIDRv4(address: address, prefixLength: prefixLength) }

    public var description: String { "\(address)/\(prefixLength)" }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let c = CIDRv4(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad CIDR \(text)"))
        }
        self = c
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A 48-bit Ethernet address.
public struct MACAddress: Hashable, Codable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) {
        precondition(bytes.count == 6)
        self.bytes = bytes
    }

    /// Parses "52:54:00:11:22:aa" (colons, two hex digits each).
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var b: [UInt8] = []
        for p in parts {
            guard p.count == 2, let n = UInt8(p, radix: 16) else { return nil }
            b.append(n)
        }
        bytes = b
    }

    public var isMulticast: Bool { bytes[0] & 1 == 1 }
    public var isLocallyAdministered: Bool { bytes[0] & 2 == 2 }

    public var description: String {
        bytes.map { let s = String($0, radix: 16); return s.count == 1 ? "0" + s : s }.joined(separator: ":")
    }

    /// A stable, locally administered unicast address: `prefix` bytes then bytes of a hash of `seed`.
    public static func stable(prefix: [UInt8], seed: String) -> MACAddress {
        var h = StableHash.fnv1a64(seed)
        var b = prefix
        while b.count < 6 { b.append(UInt8(truncatingIfNeeded: h)); h >>= 8 }
        b[0] = (b[0] | 0x02) & 0xfe
        return MACAddress(b)
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let m = MACAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad MAC \(text)"))
        }
        self = m
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A hash that is the same in every process and on every run (Swift's `Hasher` is seeded per process).
public enum StableHash {
    public static func fnv1a64(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return h
    }
}
