import Glibc

/// The process's Linux capabilities.
public enum Capabilities {
    /// CAP_NET_ADMIN's bit number.
    static let netAdmin: UInt64 = 12

    /// Whether the effective capability set holds CAP_NET_ADMIN (bit 12 of `CapEff` in
    /// /proc/self/status): true for root, and for a process given the capability.
    /// False when the file cannot be read.
    public static func canAdministerNetwork() -> Bool {
        guard let status = try? Files.read("/proc/self/status", "read /proc/self/status"),
              let mask = effectiveMask(status: status) else { return false }
        return mask & (1 << netAdmin) != 0
    }

    /// The `CapEff:` hex mask of a /proc/PID/status text.
    static func effectiveMask(status: String) -> UInt64? {
        for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(String(line.dropFirst("CapEff:".count).filter { !$0.isWhitespace }), radix: 16)
        }
        return nil
    }
}
