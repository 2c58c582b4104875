import Glibc
import KVMNetCore

/// Kernel parameters under /proc/sys.
///
/// /proc/sys/net shows the network namespace of the thread that opens the file, so a store
/// used on a namespace's thread reads and writes that namespace's values.
/// Writing needs root (CAP_NET_ADMIN for most `net.*` keys of a namespace).
public final class ProcSysctl: SysctlStore {
    /// The folder keys are resolved under; `/proc/sys` unless a test points elsewhere.
    public let root: String

    public init(root: String = "/proc/sys") { self.root = root }

    /// The file for a key: dots become slashes (`net.ipv4.ip_forward` → `net/ipv4/ip_forward`);
    /// a key that contains a slash is taken as a path already, so parts may hold dots
    /// (`net/ipv6/conf/vif1.0/disable_ipv6`).
    public func path(for key: String) throws(HostError) -> String {
        let relative = key.contains("/") ? key : key.replacingOccurrences(".", "/")
        let parts = relative.split(separator: "/", omittingEmptySubsequences: true)
        guard !parts.isEmpty, !parts.contains(where: { $0 == ".." || $0 == "." }) else {
            throw .other("sysctl \(key): not a valid key")
        }
        return root + "/" + parts.joined(separator: "/")
    }

    /// Reads a key and returns its value without the trailing newline. Equals `sysctl -n KEY`.
    /// Throws `notFound` when the key does not exist, `permission` when it may not be read.
    public func read(_ key: String) throws(HostError) -> String {
        var text = try Files.read(try path(for: key), "read sysctl \(key)")
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }

    /// Writes a value. Equals `sysctl -w KEY=VALUE`.
    /// Throws `notFound` for an unknown key, `permission` without the privilege.
    public func write(_ key: String, _ value: String) throws(HostError) {
        try Files.write(try path(for: key), value + "\n", "write sysctl \(key)=\(value)")
    }
}

extension String {
    /// `replacingOccurrences` without Foundation, for single characters.
    fileprivate func replacingOccurrences(_ a: Character, _ b: Character) -> String {
        String(map { $0 == a ? b : $0 })
    }
}
