import CLibnl
import Glibc
import KVMNetCore

// The two funnels from C return values to `HostError`: one for libnl codes, one for errno.
// Every C call in this module goes through one of them, so the same kernel answer always
// becomes the same Swift error, and every message names the operation and the object.

/// Maps a libnl return code to a typed error; returns the code when it is not an error.
///
/// - Parameters:
///   - code: A libnl return value: negative `-NLE_*` on failure.
///   - operation: What was attempted and on what ("add bridge br-in"), evaluated only on failure.
///   - noAddressIsMissing: Whether `NLE_NOADDR` (EADDRNOTAVAIL) means "not there"
///     (deleting an address); elsewhere it is `.other`.
@discardableResult
func checkLibnl(_ code: Int32, _ operation: @autoclosure () -> String,
                noAddressIsMissing: Bool = false) throws(HostError) -> Int32 {
    if code >= 0 { return code }
    throw libnlError(code, operation(), noAddressIsMissing: noAddressIsMissing)
}

/// The error for one failed libnl call: `add bridge br-in: Object exists (libnl error -6)`.
func libnlError(_ code: Int32, _ operation: String, noAddressIsMissing: Bool = false) -> HostError {
    let text = String(cString: nl_geterror(code))
    let message = "\(operation): \(text) (libnl error \(code < 0 ? code : -code))"
    switch abs(code) {
    case NLE_EXIST: return .exists(message)
    case NLE_NODEV, NLE_OBJ_NOTFOUND: return .notFound(message)
    case NLE_NOADDR where noAddressIsMissing: return .notFound(message)
    case NLE_PERM, NLE_NOACCESS: return .permission(message)
    case NLE_BUSY: return .busy(message)
    default: return .other(message)
    }
}

/// Maps a C shim result (0 or `-errno`) to a typed error; returns the result when not an error.
@discardableResult
func checkErrno(_ result: Int32, _ operation: @autoclosure () -> String) throws(HostError) -> Int32 {
    if result >= 0 { return result }
    throw errnoError(-result, operation())
}

/// The error for one failed system call: `add tap vnet0: File exists (errno 17)`.
func errnoError(_ number: Int32, _ operation: String) -> HostError {
    let message = "\(operation): \(String(cString: strerror(number))) (errno \(number))"
    switch number {
    case EEXIST: return .exists(message)
    case ENOENT, ENODEV, ENXIO: return .notFound(message)
    case EPERM, EACCES: return .permission(message)
    case EBUSY: return .busy(message)
    default: return .other(message)
    }
}
