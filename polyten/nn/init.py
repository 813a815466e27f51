"""polyten.nn.init: parameter initialisation (being written)."""
