"""The ``polyten`` command: ``polyten backends`` and ``polyten conformance NAME``."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def _cmd_backends(args) -> int:
    from .dispatch import optable, registry
    rows = registry.backends()
    errors = registry.plugin_errors()
    if not rows and not errors:
        print("No polyten backend is installed. Install one, e.g.: pip install polyten-cpu")
        return 1
    header = ("backend", "distribution", "version", "status")
    table = []
    for info in rows:
        status = "available" if info.available else f"unavailable: {info.reason}"
        table.append((info.name, info.distribution or "(in-process)", info.version, status))
    widths = [max(len(str(r[i])) for r in [header] + table) for i in range(3)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  " + header[3])
    for r in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + r[3])
    if args.verbose:
        for info in rows:
            if not info.available:
                continue
            try:
                backend = registry.get(info.name)
            except Exception as exc:  # reported, never fatal for the listing
                print(f"\n{info.name}: could not load: {exc}")
                continue
            _print_manifest(info, backend)
    if errors:
        print("\nplugin problems:")
        for e in errors:
            dist = f" ({e.distribution})" if e.distribution else ""
            print(f"  - {e.plugin}{dist}: {e.message}")
    return 0


def _print_manifest(info, backend) -> None:
    """The capability manifest: per tier, ops native / through defaults / fallback / missing."""
    from .dispatch import dispatcher, optable
    caps = dispatcher.manifest(backend)
    prims = optable.primitives()
    have = [o for o in prims if o.name in backend.kernels]
    print(f"\n{info.name}: {backend.version}; {len(have)}/{len(prims)} primitive kernels; "
          f"dtypes: {', '.join(d for d in dispatcher._DTYPE_ORDER if d in backend.dtypes)}; "
          f"fallback policy: {dispatcher.fallback_policy(info.name)}")
    cols = ("native", "default", "fallback", "missing")
    print(f"  {'tier':10}" + "".join(f"{c:>10}" for c in cols))
    for tier in optable.TIERS:
        rows = [c for c in caps.values() if c.tier == tier]
        if rows:
            print(f"  {tier:10}" + "".join(f"{sum(r.source == c for r in rows):>10}"
                                           for c in cols))
    fused = [c.op for c in caps.values() if c.source == "native" and c.kind == "composite"]
    if fused:
        print(f"  own kernels for composites: {', '.join(fused)}")
    partial = [f"{c.op} ({', '.join(c.dtypes)})" for c in caps.values()
               if c.source != "missing" and c.dtypes and len(c.dtypes) <
               len(optable.OPS[c.op].accepted & backend.dtypes)]
    if partial:
        print(f"  only some dtypes: {', '.join(partial)}")
    for c in caps.values():
        if c.source in ("missing", "fallback"):
            print(f"  {c.source}: {c.op} [{c.tier}]: {c.reason}")
    counts = dispatcher.fallback_counts().get(info.name)
    if counts:
        print(f"  fallback calls so far: "
              f"{', '.join(f'{op} x{n}' for op, n in sorted(counts.items()))}")


def _cmd_conformance(args) -> int:
    try:
        import polyten_conformance
    except ImportError:
        print("The conformance suite is not installed: pip install polyten-conformance "
              "(or, from a checkout, pip install -e conformance)", file=sys.stderr)
        return 2
    extra = list(args.pytest_args)
    return polyten_conformance.run(args.backend, ops=args.ops, tier=args.tier,
                                   report=args.report, extra_args=tuple(extra), area=args.area)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="polyten", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("backends", help="list installed backends and whether they can run here")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also show each backend's capability manifest: per tier, the ops it "
                        "runs natively, through polyten's defaults, on the cpu fallback, or "
                        "not at all, and its dtypes")
    p.set_defaults(func=_cmd_backends)
    p = sub.add_parser("conformance", help="run the conformance suite against a backend")
    p.add_argument("backend", help="backend name, e.g. cpu")
    p.add_argument("--ops", default=None, help="only ops whose name matches this pattern")
    p.add_argument("--tier", default=None, help="only ops of this tier (core, linalg, ...)")
    p.add_argument("--report", default=None, help="write a JSON report to this file")
    p.epilog = "Arguments after -- are passed to pytest, e.g. polyten conformance cpu -- -x"
    p.add_argument("--area", default=None,
                   help="only one area of the suite (elementwise, reduction, linalg, ...)")
    p.set_defaults(pytest_args=[])
    p.set_defaults(func=_cmd_conformance)
    p = sub.add_parser("demo", help="train a small network on the digits data set",
                       add_help=False)
    p.set_defaults(func=_cmd_demo)
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = []
    if "--" in argv:  # everything after "--" goes to pytest untouched
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    if argv and argv[0] == "demo":  # the demo parses its own options (polyten demo --help)
        from .demo import main as demo_main
        return demo_main(argv[1:])
    args = parser.parse_args(argv)
    if passthrough:
        if args.command != "conformance":
            parser.error("arguments after -- are only for 'polyten conformance'")
        args.pytest_args = passthrough
    return args.func(args)


def _cmd_demo(args) -> int:
    from .demo import main as demo_main
    return demo_main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
