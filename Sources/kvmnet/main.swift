import KVMNetCLI
import KVMNetLinux
