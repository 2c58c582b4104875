import KVMNetCore
