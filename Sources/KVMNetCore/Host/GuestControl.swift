import Foundation

/// QEMU processes and their sockets: start, watch, power off, run commands on the serial console.
public protocol GuestControl: AnyObject, Sendable {
    /// The QEMU binary: qemu-system-x86_64, else qemu-kvm, else kvm; nil when none is installed.
    func qemuBinary() -> String?
    /// KVM is usable when /dev/kvm opens and the CPU shows vmx or svm (the seed's own check).
    func kvmUsable() -> Bool
    /// The default guest's kernel and initramfs, built (or found in the cache) first.
    func defaultGuest(progress: (String) -> Void) throws -> (kernel: String, initrd: String)
    /// Creates a copy-on-write qcow2 overlay of `base` at `overlay` (the base is never written).
    func createOverlay(base: String, overlay: String) throws
    /// Writes a NoCloud seed holding `files`, labelled `cidata`: an ISO (genisoimage), or a small
    /// vfat image (mtools) where genisoimage is missing.
    func makeSeed(files: [String: String], at path: String) throws
    /// Builds a small bootable qcow2 disk from a kernel and an initramfs. Returns its path.
    func buildImage(kernel: String, initrd: String, out: String) throws -> String
    /// Runs qemu with `-daemonize` and waits for its parent, which exits once the guest's
    /// devices (and so the tap hook) are set up. Returns the daemon's pid and start time.
    func start(_ argv: [String], pidfile: String) throws -> (pid: Int32, startTime: UInt64)
    /// Starts a daemon like `start` without waiting for it: the function it returns waits for
    /// the daemon's parent and reads the pidfile.
    func startInBackground(_ argv: [String], pidfile: String) throws -> () throws -> (pid: Int32, startTime: UInt64)
    /// The start time of `pid`, or nil when no such process runs.
    func startTime(of pid: Int32) -> UInt64?
    /// Sends `signal` to `pid` only if it still has `startTime` (never a reused pid).
    func kill(pid: Int32, startTime: UInt64, signal: Int32)
    /// Sends one QMP command without arguments (`system_powerdown`, `quit`).
    func qmp(socket: String, command: String) throws
    /// Runs one shell command line on the guest's serial console; returns its exit status and output.
    /// Throws when the console does not answer within `timeout` seconds.
    func exec(console: String, command: String, timeout: Double) throws -> (status: Int32, output: String)
    /// The file's text, or "" when it cannot be read (console logs).
    func readText(_ path: String) -> String
    /// Whether the file exists and this process may read it (a guest's kernel, initrd, image).
    func isReadable(_ path: String) -> Bool
    /// Writes an executable script (mode 0755), replacing it atomically.
    func writeScript(_ path: String, _ text: String) throws
    /// Writes a plain file (mode 0644), replacing it atomically.
    func writeFile(_ path: String, _ text: String) throws
    func removeFile(_ path: String)
    /// Moves a file, creating the destination folder; false when there was nothing to move.
    func moveFile(_ from: String, to: String) throws -> Bool
    /// The absolute path of the running kvmnet binary, for the hooks it writes.
    func selfPath() -> String
    /// Sleeps the calling thread.
    func sleep(seconds: Double)
    /// Monotonic seconds.
    func now() -> Double
    /// Connects the terminal to the guest's serial console until Ctrl-] is typed.
    func attach(console: String) throws
}

extension GuestControl {
    /// Starts at once and waits (a control that cannot overlap the start with other work).
    public func startInBackground(_ argv: [String], pidfile: String) throws -> () throws -> (pid: Int32, startTime: UInt64) {
        let started = try start(argv, pidfile: pidfile)
        return { started }
    }
}

/// The files of a network's guests inside its state folder.
public struct GuestPaths: Sendable {
    public var folder: String
    public init(folder: String) { self.folder = folder }
    public var ifup: String { folder + "/qemu-ifup" }
    public var ifdown: String { folder + "/qemu-ifdown" }
    public func console(_ g: String) -> String { "\(folder)/\(g).console" }
    public func log(_ g: String) -> String { "\(folder)/\(g).log" }
    public func qmp(_ g: String) -> String { "\(folder)/\(g).qmp" }
    public func pidfile(_ g: String) -> String { "\(folder)/\(g).pid" }
    public func overlay(_ g: String) -> String { "\(folder)/\(g).qcow2" }
    public func seed(_ g: String) -> String { "\(folder)/\(g)-seed.img" }
}

public enum QemuCommand {
    /// The line the default guest prints on its console once its network is configured.
    public static func readyMarker(_ guest: String) -> String { "kvmnet-guest-ready \(guest)" }
    public static func failedMarker(_ guest: String) -> String { "kvmnet-guest-failed \(guest)" }

    /// The kernel command line the default guest reads its settings from.
    public static func kernelCommandLine(_ g: GuestSpec) -> String {
        // The second group of options boots the kernel about a fifth faster under TCG.
        var s = "console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable no_timer_check cryptomgr.notests kvmnet.name=\(g.name)"
        if let a = g.address { s += " kvmnet.ip=\(a)" }
        if let gw = g.gateway { s += " kvmnet.gw=\(gw)" }
        s += " kvmnet.mtu=\(g.mtu)"
        return s
    }

    /// qemu's argv for one guest. argv, never a shell string.
    public static func argv(qemu: String, guest g: GuestSpec, boot: GuestBoot, memoryMiB: Int, cpus: Int,
                            kvm: Bool, paths: GuestPaths) -> [String] {
        var a = [qemu, "-name", g.name]
        a += kvm ? ["-accel", "kvm", "-cpu", "host"] : ["-accel", "tcg"]
        a += ["-machine", "pc", "-m", "\(memoryMiB)", "-smp", "\(cpus)",
              "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]
        switch boot {
        case .kernel(let k, let i):
            a += ["-kernel", k, "-initrd", i, "-append", kernelCommandLine(g)]
        case .image:
            // The seed is a virtio disk: an IDE CD-ROM needs drivers the default guest lacks.
            a += ["-drive", "file=\(paths.overlay(g.name)),if=virtio,format=qcow2",
                  "-drive", "file=\(paths.seed(g.name)),if=virtio,format=raw,readonly=on"]
        }
        a += ["-chardev", "socket,id=ser0,path=\(paths.console(g.name)),server=on,wait=off,logfile=\(paths.log(g.name))",
              "-serial", "chardev:ser0",
              "-qmp", "unix:\(paths.qmp(g.name)),server=on,wait=off",
              "-netdev", "tap,id=net0,ifname=\(g.tap),script=\(paths.ifup),downscript=\(paths.ifdown)",
              "-device", "virtio-net-pci,netdev=net0,mac=\(g.mac),romfile=",
              "-pidfile", paths.pidfile(g.name), "-daemonize"]
        return a
    }

    /// The hook qemu runs as `script=`/`downscript=`, with the tap's name as its only argument.
    /// It pins the network and the state folder, so people can pass it to their own qemu.
    /// - Parameter configDir: given for the stable hooks `define` writes, which bring the network
    ///   up on the first ifup and take it down on the last ifdown.
    public static func hookScript(action: String, kvmnet: String, stateDir: String, configDir: String? = nil,
                                  network: NetworkName) -> String {
        let writer = configDir == nil ? "kvmnet up" : "kvmnet define"
        let config = configDir.map { " --config-dir \(shellQuote($0))" } ?? ""
        return """
        #!/bin/sh
        # qemu \(action == "ifup" ? "script=" : "downscript=") hook of kvmnet network \(network), written by `\(writer)`.
        # qemu runs it with the tap's name as its only argument.
        exec \(shellQuote(kvmnet)) --state-dir \(shellQuote(stateDir))\(config) hook \(action) "$1" --name \(network)

        """
    }

    static func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
