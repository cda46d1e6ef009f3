"""The ``acr-ci`` command line: argv → one library call → exit code.

All of argparse lives here. Each ``_cmd_*`` function turns parsed arguments
into one call into the library and prints its result; no logic of its own.
:class:`~acr_ci.errors.AcrError` is caught once in :func:`main` and mapped to
its exit code; ``--verbose`` shows the traceback too.

Heavy modules are imported inside the command that needs them, so that
``acr-ci --help`` and ``acr-ci plan`` start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from acr_ci import __version__
from acr_ci.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, AcrError

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit 2 (its own convention too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"acr-ci: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _add_ref_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="F", help="the rule config (default: $ACR_CI_CONFIG or .acr-ci.yml)"
    )
    p.add_argument("--ref", metavar="R", help="refs/heads/X, refs/tags/X or a bare branch name")
    p.add_argument("--sha", metavar="S", help="the commit ID (hex)")
    p.add_argument("--time", metavar="T", help="the push time: ISO 8601 or epoch seconds")


def _add_registry_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the registry password from stdin (user from $ACR_CI_REGISTRY_USERNAME)",
    )
    p.add_argument(
        "--insecure",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="allow plain HTTP / unverified TLS for this registry (loopback always is)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=4,
        metavar="N",
        help="parallel transfers per registry (default 4)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="acr-ci",
        description="Build, push, scan, mirror and announce container images from any CI.",
    )
    parser.add_argument("--version", action="version", version=f"acr-ci {__version__}")
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="log what acr-ci does; tracebacks on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("plan", help="show which images and tags this ref would build")
    _add_ref_flags(p)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_cmd_plan)

    p = sub.add_parser("build", help="build the images of every rule matching this ref")
    _add_ref_flags(p)
    p.add_argument("--push", action="store_true", help="push each image under all its tags")
    p.add_argument("--rule", metavar="NAME", help="build only this rule")
    p.add_argument(
        "--output-json", metavar="FILE", help="write rule, tags and digests of each build here"
    )
    p.add_argument(
        "--layout-dir",
        metavar="DIR",
        help="where the OCI layouts go (default: a new temporary directory, kept)",
    )
    p.set_defaults(handler=_cmd_build)

    p = sub.add_parser("schema", help="print the config's JSON Schema")
    p.set_defaults(handler=_cmd_schema)

    p = sub.add_parser("push", help="push an OCI layout to a registry under one or more tags")
    p.add_argument("source", metavar="oci-layout:DIR[:TAG]")
    p.add_argument("destination", metavar="REGISTRY/REPO:TAG")
    p.add_argument("extra_tags", nargs="*", metavar="TAG", help="more tags for the same image")
    _add_registry_flags(p)
    p.set_defaults(handler=_cmd_push)

    p = sub.add_parser("copy", help="copy an image between registries and/or OCI layouts")
    p.add_argument("source", metavar="SRC")
    p.add_argument("destination", metavar="DST")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--all-platforms", action="store_true", help="copy every platform (the default)")
    g.add_argument("--platform", action="append", default=[], metavar="OS/ARCH[/VARIANT]")
    p.add_argument(
        "--referrers", action="store_true", help="also copy signatures, SBOMs and other referrers"
    )
    _add_registry_flags(p)
    p.set_defaults(handler=_cmd_copy)

    p = sub.add_parser("inspect", help="show an image's digest, media type, platforms and size")
    p.add_argument("reference", metavar="REF")
    p.add_argument(
        "--raw", action="store_true", help="print the manifest exactly as the registry serves it"
    )
    _add_registry_flags(p)
    p.set_defaults(handler=_cmd_inspect)
    p = sub.add_parser(
        "scan",
        help="scan an image (or read scanner reports) and apply the scan gate",
        description=(
            "Scan IMAGE by digest (a tag is resolved first) with scan.engine, or read --report files, "
            "then apply the policy (scan.block, or --severity/--fail-on when the config has no scan: "
            "section; one of them is required). Counts vulnerabilities: findings merged by id and "
            "aliases. Exit 3 when blocked in blocking mode, after on_block's backup-then-delete."
        ),
    )
    from acr_ci.scan.command import add_arguments as _add_scan_arguments

    _add_scan_arguments(p)
    _add_registry_flags(p)
    p.set_defaults(handler=_cmd_scan)

    # -- delivery: sync, trigger, run (chain.py, sync.py, triggers.py) --
    p = sub.add_parser(
        "sync",
        help="copy an image (or with --backfill every tag of a repository) to the sync: mirrors",
        description=(
            "Copy IMAGE:TAG, IMAGE:TAG@DIGEST or IMAGE@DIGEST (every tag pointing at it) to each "
            "sync: destination whose tags regex selects the tag: by digest, all platforms, with "
            "referrers. Destinations run concurrently; each uses the docker config's credentials "
            "for its host. Exit 1 if any destination failed."
        ),
    )
    p.add_argument(
        "image", metavar="IMAGE[:TAG|@DIGEST]", help="the image; with --backfill a repository"
    )
    p.add_argument(
        "--config", metavar="F", help="the rule config (default: $ACR_CI_CONFIG or .acr-ci.yml)"
    )
    p.add_argument(
        "--backfill",
        action="store_true",
        help="mirror every existing tag of the repository the rules select, skipping tags "
        "already there with the same digest",
    )
    _add_registry_flags(p)
    p.set_defaults(handler=_cmd_sync)

    p = sub.add_parser(
        "trigger",
        help="call the triggers: webhooks for one pushed tag",
        description=(
            "POST the hosted console's webhook payload for IMAGE:TAG to every trigger that "
            "selects TAG. The digest is looked up in the registry unless given (IMAGE:TAG@DIGEST). "
            "Exit 1 if any trigger failed."
        ),
    )
    p.add_argument("image", metavar="IMAGE:TAG[@DIGEST]")
    p.add_argument(
        "--config", metavar="F", help="the rule config (default: $ACR_CI_CONFIG or .acr-ci.yml)"
    )
    _add_registry_flags(p)
    p.set_defaults(handler=_cmd_trigger)

    p = sub.add_parser(
        "run",
        help="the whole chain: plan, build, push, scan gate, sync, triggers; writes the run record",
        description=(
            "Build every rule matching the ref, push, scan, mirror and announce each image, write "
            "the run record (JSON) and print a Markdown summary. Exit 3 if an image was blocked, "
            "1 if a step failed, else 0."
        ),
    )
    _add_ref_flags(p)
    p.add_argument(
        "--record",
        metavar="FILE",
        default="acr-ci-record.json",
        help="where the run record goes (default: acr-ci-record.json)",
    )
    p.add_argument(
        "--layout-dir",
        metavar="DIR",
        help="where the OCI layouts go (default: a new temporary directory, kept)",
    )
    _add_registry_flags(p)
    p.set_defaults(handler=_cmd_run)
    return parser


def _cmd_plan(args: argparse.Namespace) -> int:
    from acr_ci import config as config_mod
    from acr_ci import platforms, tags

    cfg = config_mod.load(args.config)
    ref = platforms.detect_ref(ref=args.ref, sha=args.sha, time=args.time)
    plans = tags.plan(cfg, ref)
    if args.format == "json":
        doc = {
            "ref": {"type": str(ref.type), "name": ref.name, "sha": ref.sha},
            "builds": [p.to_json() for p in plans],
        }
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    print(f"{ref.type} {ref.name} @ {ref.sha[:12] or '(unknown commit)'} (from {ref.source})")
    if not plans:
        print("no rule matches: nothing to build")
    for p in plans:
        print(f"rule {p.rule}: {', '.join(p.platforms)}  ({p.context}/{p.dockerfile})")
        for image in p.images:
            print(f"  {image}")
    return EXIT_OK


def _cmd_build(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from acr_ci import config as config_mod
    from acr_ci import platforms, tags
    from acr_ci.build.context import registry_host
    from acr_ci.build.service import build_for_config, result_json, select_plans
    from acr_ci.registry.cli_support import env_credentials

    cfg = config_mod.load(args.config)
    ref = platforms.detect_ref(ref=args.ref, sha=args.sha, time=args.time)
    known = [r.name for r in cfg.build.rules]
    plans = select_plans(tags.plan(cfg, ref), args.rule, known)
    ref_doc = {"type": str(ref.type), "name": ref.name, "sha": ref.sha}
    if not plans:
        print("no rule matches: nothing to build")
        if args.output_json:
            Path(args.output_json).write_text(json.dumps({"ref": ref_doc, "builds": []}) + "\n")
        return EXIT_OK
    image_host = registry_host(cfg.image)
    workdir = Path(args.layout_dir or tempfile.mkdtemp(prefix="acr-ci-build-"))
    results = build_for_config(
        cfg,
        plans,
        ref,
        workdir=workdir,
        ci_credentials=env_credentials(args, [image_host] if image_host else []),
    )
    if args.push:
        from acr_ci.build.service import push_builds
        from acr_ci.chain import client_for_args

        with client_for_args(args, cfg) as client:
            push_builds(client, cfg, plans, results)  # byte-exact: digests stay the built ones
    for plan, result in zip(plans, results, strict=True):
        for image in plan.images:
            print(f"{image}@{result.index_digest}")
    if args.output_json:
        doc = {
            "ref": ref_doc,
            "builds": [result_json(p, r) for p, r in zip(plans, results, strict=True)],
        }
        Path(args.output_json).write_text(json.dumps(doc, indent=2) + "\n")
    return EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from acr_ci.config import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


def _cmd_push(args: argparse.Namespace) -> int:
    from acr_ci.registry import cli_support as rc

    src = rc.parse_layout(args.source, what="push source")
    dst, tags = rc.push_destination(args.destination, args.extra_tags)
    with rc.make_client(args, [dst]) as client:
        result = client.push_layout(src, dst, tags)
    rc.report(result, dst, quiet=args.quiet)
    print(result.digest)
    return EXIT_OK


def _cmd_copy(args: argparse.Namespace) -> int:
    from acr_ci.registry import cli_support as rc

    src = rc.parse_side(args.source, what="copy source")
    dst = rc.parse_side(args.destination, what="copy destination")
    platforms = rc.parse_platforms(args.platform)
    with rc.make_client(args, [dst]) as client:
        result = client.copy(src, dst, platforms=platforms, referrers=args.referrers)
    rc.report(result, dst, quiet=args.quiet)
    print(result.digest)
    return EXIT_OK


def _cmd_scan(args: argparse.Namespace) -> int:
    from acr_ci.scan.command import run

    return run(args)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from acr_ci.registry import cli_support as rc

    ref = rc.parse_side(args.reference, what="inspect reference")
    with rc.make_client(args, [ref]) as client:
        text = rc.inspect(client, ref, raw=args.raw)
    sys.stdout.write(text)
    return EXIT_OK


def _cmd_sync(args: argparse.Namespace) -> int:
    from acr_ci import config as config_mod
    from acr_ci import sync
    from acr_ci.chain import client_for_args

    cfg = config_mod.load(args.config)
    with client_for_args(args, cfg, args.image) as client:
        results = sync.command(client, cfg, args.image, all_tags=args.backfill)
    for r in results:
        print(sync.describe(r))
    return sync.exit_code(results)


def _cmd_trigger(args: argparse.Namespace) -> int:
    from acr_ci import config as config_mod
    from acr_ci import triggers
    from acr_ci.chain import client_for_args

    cfg = config_mod.load(args.config)
    with client_for_args(args, cfg, args.image) as client:
        results = triggers.command(cfg, args.image, client=client)
    for r in results:
        print(triggers.describe(r))
    return triggers.exit_code(results)


def _cmd_run(args: argparse.Namespace) -> int:
    from acr_ci import chain, platforms, record
    from acr_ci import config as config_mod

    cfg = config_mod.load(args.config)
    ref = platforms.detect_ref(ref=args.ref, sha=args.sha, time=args.time)
    with chain.client_for_args(args, cfg) as client:
        run = chain.run_chain(cfg, ref, chain.parts_for_args(args, client))
    path = record.write(run, args.record)
    sys.stdout.write(record.summary_markdown(run))
    sys.stderr.write(f"acr-ci: run record written to {path}\n")
    return run.exit_code


def _verbose_logging() -> None:
    """acr-ci's own log lines on stderr; HTTP libraries stay at warnings (their debug lines
    carry request paths, which may hold tokens)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="acr-ci: %(name)s: %(message)s")
    logging.getLogger("acr_ci").setLevel(logging.DEBUG)
    for noisy in ("urllib3", "requests"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    if args.verbose:
        _verbose_logging()
    try:
        return handler(args)
    except AcrError as e:
        if args.verbose:
            traceback.print_exc()
        sys.stderr.write(f"acr-ci: error: {e.diagnostics()}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("acr-ci: interrupted\n")
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. `acr-ci plan | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # a bug: say so in one line unless --verbose
        if args.verbose:
            traceback.print_exc()
        sys.stderr.write(
            f"acr-ci: internal error: {type(e).__name__} (run with --verbose for details, "
            "and please report it)\n"
        )
        return EXIT_FAILED
