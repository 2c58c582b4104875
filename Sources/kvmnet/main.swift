import Foundation
import Glibc
import KVMNetCLI
import KVMNetCore
import KVMNetLinux
import Synchronization

/// The SIGINT/SIGTERM received so far; `up` checks it between steps and rolls back.
let pendingSignal = Atomic<Int32>(0)

/// Writes all of `text` to a file descriptor (1 stdout, 2 stderr), unbuffered.
func write(_ text: String, fd: Int32) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue } else { return } }
        bytes = bytes.dropFirst(n)
    }
}

let console = Console(out: { write($0, fd: 1) }, err: { write($0, fd: 2) })

/// Failures before a command runs (usage, privilege, namespace) answer `--json` too.
let askedForJSON = CommandLine.arguments.dropFirst().contains("--json")

func fail(_ e: KVMNetError) -> Never {
    exit(KVMNetCLI.report(e.description, code: e.exitCode, json: askedForJSON, console: console))
}

// 1. Parse everything first: usage errors (64) and --help need neither root nor the host.
let invocation: Invocation
do {
    invocation = try KVMNetCLI.parse(KVMNetCLI.rewrite(argv0: CommandLine.arguments[0], Array(CommandLine.arguments.dropFirst())),
                                     environment: ProcessInfo.processInfo.environment)
} catch let e as KVMNetError {
    fail(e)
} catch {
    fail(.failure("\(error)"))
}

// 2. Privilege before any namespace switch or state-folder access (77).
if case .command = invocation.action, invocation.needsPrivilege, !Capabilities.canAdministerNetwork() {
    fail(.permission("this command needs root (CAP_NET_ADMIN): run it with sudo"))
}

// 3. The whole process moves into the namespace before any thread exists, so netlink,
//    /proc/sys, /proc/net, /sys and every child see the same one.
if case .command = invocation.action, let ns = invocation.global.netns {
    do { try NetworkNamespace.enter(named: ns) } catch { fail(error) }
}

// 4. Ctrl-C and SIGTERM during `up` roll back and exit 130/143.
//    A closed stdout (`| head`) must not kill a half-done `up`: writes then fail quietly instead.
//    A parent may have blocked them (signal masks are inherited): unblock them first.
signal(SIGINT) { pendingSignal.store($0, ordering: .relaxed) }
signal(SIGTERM) { pendingSignal.store($0, ordering: .relaxed) }
signal(SIGPIPE, SIG_IGN)
var interruptSignals = sigset_t()
sigemptyset(&interruptSignals)
sigaddset(&interruptSignals, SIGINT)
sigaddset(&interruptSignals, SIGTERM)
sigprocmask(SIG_UNBLOCK, &interruptSignals, nil)

let env: HostEnvironment
do {
    env = try LiveHost.make(stateDir: invocation.global.stateDir ?? "/run/kvmnet",
                            configDir: invocation.global.configDir ?? "/etc/kvmnet",
                            log: { console.err("kvmnet: \($0)\n") },
                            pendingSignal: { let s = pendingSignal.load(ordering: .relaxed); return s == 0 ? nil : s })
} catch let e as HostError {
    if case .permission = e { fail(.permission(e.description)) }
    fail(.failure(e.description))
} catch {
    fail(.failure("\(error)"))
}
exit(KVMNetCLI.run(invocation, env: env, console: console))
