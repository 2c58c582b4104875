#ifndef KVMNET_SHIM_H
#define KVMNET_SHIM_H
#endif
