/// Errors kvmnet reports to the user, each mapped to a documented exit code.
///
/// Exit codes follow BSD `sysexits.h` as swift-argument-parser does:
/// 0 ok, 1 failure, 64 usage, 77 no permission, 125 `exec` could not run, 130/143 signals.
public enum KVMNetError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Bad input from the user: a bad value, an unknown option. Exit 64.
    case usage(String)
    /// The operation failed; the host is as it was (or the message says what is left). Exit 1.
    case failure(String)
    /// Not root, no CAP_NET_ADMIN, or EPERM/EACCES from the kernel. Exit 77.
    case permission(String)
    /// Interrupted by a signal after rolling back. Exit 128+signal.
    case interrupted(signal: Int32, String)
    /// A failure with an explicit exit status (for `exec`: 125).
    case status(Int32, String)

    public var exitCode: Int32 {
        switch self {
        case .usage: return 64
        case .failure: return 1
        case .permission: return 77
        case .interrupted(let signal, _): return 128 + signal
        case .status(let code, _): return code
        }
    }

    public var description: String {
        switch self {
        case .usage(let m), .failure(let m), .permission(let m), .interrupted(_, let m), .status(_, let m):
            return m
        }
    }
}

/// Errors from a host adapter (netlink, sysctl, files, subprocesses), typed so that
/// "ensure" operations can tolerate exactly `exists` on create and `notFound` on delete.
public enum HostError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The object is already there (EEXIST / NLE_EXIST).
    case exists(String)
    /// The object is not there (ENOENT, ENODEV / NLE_NODEV, NLE_OBJ_NOTFOUND).
    case notFound(String)
    /// Permission denied (EPERM, EACCES / NLE_PERM).
    case permission(String)
    /// The device or resource is busy (EBUSY).
    case busy(String)
    /// Anything else, with the operation, the object and the system's message.
    case other(String)

    public var description: String {
        switch self {
        case .exists(let m), .notFound(let m), .permission(let m), .busy(let m), .other(let m): return m
        }
    }
}
