import Foundation

/// The NoCloud seed of a disk-image guest: what cloud-init (and cirros) read from a filesystem
/// labelled `cidata`, plus `kvmnet.env` for the default guest's initramfs, which reads no YAML.
public enum NoCloudSeed {
    /// The seed's files. Static models get their address in the seed; routed and nat guests use
    /// DHCP (their address comes from their static DHCP entry, which cirros also follows).
    public static func files(guest g: GuestSpec, spec: NetworkSpec, sshKeys: [String]) -> [String: String] {
        let dhcp = spec.servesDHCP
        // instance-id changes whenever the guest's configuration does, so cloud-init applies it again.
        let config = "\(g.name) \(g.mac) \(g.address.map { "\($0)" } ?? "") \(g.gateway.map { "\($0)" } ?? "") \(g.mtu) \(dhcp) \(sshKeys)"
        let id = "kvmnet-\(spec.name)-\(g.name)-" + String(StableHash.fnv1a64(config) & 0xffff_ffff, radix: 16)
        let meta = "{\"instance-id\": \"\(id)\", \"local-hostname\": \"\(g.name)\"}\n"
        var user = "#cloud-config\nhostname: \(g.name)\n"
        if !sshKeys.isEmpty {
            user += "ssh_authorized_keys:\n" + sshKeys.map { "  - \(yamlQuote($0))\n" }.joined()
        }
        var net = "version: 2\nethernets:\n  eth0:\n    match:\n      macaddress: \"\(g.mac)\"\n    set-name: eth0\n"
        var env = "KVMNET_NAME=\(g.name)\nKVMNET_MTU=\(g.mtu)\n"
        if dhcp || g.address == nil {
            net += "    dhcp4: true\n"
        } else if let a = g.address {
            net += "    addresses: [\(a)]\n"
            // Not `routes: - to: default`: cloud-init 22.4 (Debian 12) aborts its network stage on it.
            if let gw = g.gateway { net += "    gateway4: \(gw)\n" }
            env += "KVMNET_IP=\(a)\n" + (g.gateway.map { "KVMNET_GW=\($0)\n" } ?? "")
        }
        net += "    mtu: \(g.mtu)\n"
        return ["meta-data": meta, "user-data": user, "network-config": net, "kvmnet.env": env]
    }

    static func yamlQuote(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
}
