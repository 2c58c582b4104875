import CKVMNetShim
import Glibc
import KVMNetCore

/// Runs work in a fresh, private network namespace on a dedicated thread (for tests).
///
/// `unshare`/`setns` act on the calling thread, and a Swift concurrency thread that switched
/// namespace carries it into unrelated tasks later. So each call creates its own pthread, which
/// 1. unshares its network namespace (unshare(CLONE_NEWNET)), 2. brings `lo` up (a fresh
/// namespace's loopback is down, and corelibs-foundation needs it), 3. runs `body`, then ends.
/// The namespace vanishes with the thread (and with anything in it: taps, bridges, routes),
/// also when `body` throws. Needs root: `/dev/net/tun` and unshare need real privilege.
public enum NamespaceThread {
    /// Runs `body` on a new thread in a new network namespace; waits for it; returns its result
    /// or rethrows its error (or a `HostError` when the namespace could not be made).
    ///
    /// Use sockets (a `NetlinkHost`) and subprocesses created *inside* `body` only: they bind
    /// to the namespace of the thread that creates them. Spawn subprocesses with posix_spawn,
    /// not Foundation.Process (which hangs waiting in a fresh namespace).
    public static func run<T>(_ body: () throws -> T) throws -> T {
        var outcome: Result<T, any Error>?
        try withoutActuallyEscaping(body) { body throws(HostError) in
            let work = ThreadWork {
                outcome = Result {
                    try checkErrno(kvmnet_unshare_net(), "unshare network namespace")
                    try NetlinkHost().setUp(name: "lo", true)
                    return try body()
                }
            }
            try work.runOnNewThreadAndJoin()
        }
        guard let outcome else { throw HostError.other("namespace thread: ended without a result") }
        return try outcome.get()
    }
}

/// A closure handed to a new pthread. `@unchecked Sendable`: the creating thread waits in
/// `pthread_join` while the new thread runs it, so nothing touches it concurrently.
private final class ThreadWork: @unchecked Sendable {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }

    func runOnNewThreadAndJoin() throws(HostError) {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let created = pthread_create(&thread, nil, { raw in
            Unmanaged<ThreadWork>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, context)
        guard created == 0 else {
            Unmanaged<ThreadWork>.fromOpaque(context).release()
            throw errnoError(created, "start namespace thread")
        }
        let joined = pthread_join(thread, nil)
        if joined != 0 { throw errnoError(joined, "join namespace thread") }
    }
}
