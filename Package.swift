// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "kvmnet",
    products: [
        .executable(name: "kvmnet", targets: ["kvmnet"]),
    ],
    targets: [
        // libnl-3 / libnl-route-3 from Debian (libnl-3-dev, libnl-route-3-dev).
        .systemLibrary(
            name: "CLibnl",
            pkgConfig: "libnl-route-3.0",
            providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]
        ),
        // TUN/TAP ioctls, namespace switching and raw netlink attributes Swift cannot import.
        .target(name: "CKVMNetShim", dependencies: ["CLibnl"]),
        // Pure logic: models, validation, planning, rendering, host protocols. Foundation only.
        .target(name: "KVMNetCore"),
        // The only module that touches the operating system.
        .target(name: "KVMNetLinux", dependencies: ["KVMNetCore", "CLibnl", "CKVMNetShim"]),
        // The command line: parsing, commands, output. Receives a HostEnvironment.
        .target(name: "KVMNetCLI", dependencies: ["KVMNetCore"]),
        // A fake host (a small kernel model) and golden-file helpers for tests.
        .target(name: "KVMNetTestSupport", dependencies: ["KVMNetCore"]),
        .executableTarget(name: "kvmnet", dependencies: ["KVMNetCLI", "KVMNetLinux"]),

        .testTarget(name: "KVMNetCoreTests", dependencies: ["KVMNetCore", "KVMNetTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "KVMNetCLITests", dependencies: ["KVMNetCLI", "KVMNetCore", "KVMNetTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "KVMNetLinuxTests", dependencies: ["KVMNetLinux", "KVMNetCore", "KVMNetTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
