#include "kvmnet_shim.h"
