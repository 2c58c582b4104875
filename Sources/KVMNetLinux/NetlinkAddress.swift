import CLibnl
import Glibc
import KVMNetCore

// Conversions between text and libnl `nl_addr` objects. All `nl_addr` pointers of the module
// pass through here, so no other file has to tell an `nl_addr` OpaquePointer from another kind.

enum NetlinkAddress {
    /// The kernel address family of a `Host` family.
    static func family(_ family: AddressFamily) -> Int32 {
        family == .inet ? AF_INET : AF_INET6
    }

    /// The text of a borrowed `nl_addr` without its prefix ("10.0.0.1", "fe80::1"); nil when
    /// absent. An empty address (a default route's destination) reads as all zeros.
    static func text(_ addr: OpaquePointer?) -> String? {
        guard let addr else { return nil }
        let family = nl_addr_get_family(addr)
        let size = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0
        guard size > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 16)
        let length = Int(nl_addr_get_len(addr))
        if length > 0, let raw = nl_addr_get_binary_addr(addr) {
            guard length == size else { return nil }
            for i in 0..<length { bytes[i] = raw.load(fromByteOffset: i, as: UInt8.self) }
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        guard inet_ntop(family, bytes, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// "ADDRESS/PREFIX" of a borrowed `nl_addr` ("0.0.0.0/0" for a default route).
    static func textWithPrefix(_ addr: OpaquePointer?) -> String? {
        guard let addr, let t = text(addr) else { return nil }
        return "\(t)/\(nl_addr_get_prefixlen(addr))"
    }

    /// The six bytes of a borrowed link-layer `nl_addr`, when it has six.
    static func mac(_ addr: OpaquePointer?) -> MACAddress? {
        guard let addr, nl_addr_get_len(addr) == 6, let raw = nl_addr_get_binary_addr(addr) else { return nil }
        return MACAddress((0..<6).map { raw.load(fromByteOffset: $0, as: UInt8.self) })
    }

    /// Parses text ("10.0.0.1", "10.0.0.0/24", "::/0") into a new `nl_addr` of `family`.
    /// The caller owns the result and must `nl_addr_put` it.
    static func parse(_ text: String, family: AddressFamily, _ operation: @autoclosure () -> String) throws(HostError) -> OpaquePointer {
        var out: OpaquePointer?
        let code = nl_addr_parse(text, Self.family(family), &out)
        guard code >= 0, let out else {
            throw .other("\(operation()): bad \(family == .inet ? "IPv4" : "IPv6") address \"\(text)\" (libnl error \(code))")
        }
        return out
    }
}
