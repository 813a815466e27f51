"""The conformance tests (run with ``polyten conformance NAME`` or ``polyten_conformance.run``)."""
