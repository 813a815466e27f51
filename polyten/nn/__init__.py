"""polyten.nn: modules, layers, losses and init, written once above autograd (nn issue)."""
