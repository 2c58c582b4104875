import Foundation
import Glibc
import KVMNetCore

/// Builds the host environment of the real machine, in the current network namespace.
public enum LiveHost {
    /// - Parameters:
    ///   - stateDir: the state folder (`--state-dir`, `KVMNET_STATE_DIR`, default /run/kvmnet).
    ///   - pendingSignal: the SIGINT/SIGTERM received so far, if any.
    public static func make(stateDir: String, configDir: String, log: @escaping (String) -> Void,
                            pendingSignal: @escaping () -> Int32?) throws -> HostEnvironment {
        let ns = NetworkNamespace.currentIdentity()
        // Hooks pin these folders: make them absolute.
        let stateDir = absolute(stateDir), configDir = absolute(configDir)
        var env = HostEnvironment(links: try NetlinkHost(), sysctl: ProcSysctl(), commands: PosixCommandRunner(),
                                  probe: SysfsProbe(), state: FileStateStore(stateDir: stateDir, namespace: ns),
                                  namespace: ns, canAdministerNetwork: Capabilities.canAdministerNetwork(), log: log)
        env.pendingSignal = pendingSignal
        env.userID = userID
        env.guests = QemuGuests()
        env.stateDir = stateDir
        env.definitions = FileDefinitionStore(directory: configDir)
        return env
    }

    /// A user name or a numeric uid → uid, via the password database.
    public static func userID(_ text: String) -> UInt32? {
        if let n = UInt32(text) { return n }
        guard let pw = getpwnam(text) else { return nil }
        return pw.pointee.pw_uid
    }
}

func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}
