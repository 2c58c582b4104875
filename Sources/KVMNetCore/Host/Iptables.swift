import Foundation

/// iptables through subprocesses: one `iptables-save` to read, one `iptables-restore` to change.
public struct Iptables {
    let runner: any CommandRunner

    public init(_ runner: any CommandRunner) { self.runner = runner }

    /// Every table's chains and rules. Equals `iptables-save`.
    public func save() throws -> IptablesState {
        IptablesState(save: try run(["iptables-save"], stdin: nil))
    }

    /// Starts a transaction that touches nothing it does not name; the function it returns waits
    /// for it. Equals `iptables-restore -w --noflush`.
    public func startRestore(_ text: String) throws -> () throws -> Void {
        guard !text.isEmpty else { return {} }
        let argv = ["iptables-restore", "-w", "--noflush"]
        let started = try start(argv, stdin: text)
        return { _ = try Self.check(argv, try started.finish()) }
    }

    func run(_ argv: [String], stdin: String?) throws -> String {
        try Self.check(argv, try start(argv, stdin: stdin).finish())
    }

    func start(_ argv: [String], stdin: String?) throws -> any StartedCommand {
        do { return try runner.start(argv, stdin: stdin) } catch HostError.notFound {
            throw KVMNetError.failure("\(argv[0]) is not installed: install the Debian package iptables (apt-get install iptables)")
        }
    }

    static func check(_ argv: [String], _ result: CommandResult) throws -> String {
        guard result.status == 0 else {
            throw KVMNetError.failure(CommandFailure.describe(argv: argv, result: result))
        }
        return result.stdout
    }
}

/// How a failed subprocess is reported: exit status, the escaped argv and the trimmed stderr.
public enum CommandFailure {
    public static func describe(argv: [String], result: CommandResult) -> String {
        let err = result.stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.suffix(5).joined(separator: "; ")
        return "`\(shellEscape(argv))` exited with status \(result.status)" + (err.isEmpty ? "" : ": \(err)")
    }

    /// Quotes each argument for a POSIX shell when it needs it.
    public static func shellEscape(_ argv: [String]) -> String {
        argv.map { a in
            let safe = a.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_./=:,@%+".unicodeScalars.contains($0) }
            return safe && !a.isEmpty ? a : "'" + a.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }
}
