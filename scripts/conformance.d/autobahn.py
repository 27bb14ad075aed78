# -*- coding: utf-8 -*-
"""Helpers for scripts/conformance (runs on Python 2.7 and 3).

  autobahn.py spec TEMPLATE OUT --url URL --outdir DIR [--cases 'A B'] [--exclude 'C D']
      Writes a wstest fuzzingclient spec: TEMPLATE with the server URL, the
      report folder and optionally the case list replaced.

  autobahn.py server-spec OUT --url URL --outdir DIR --cases 'A B'
      Writes a wstest fuzzingserver spec (the viewer direction).

  autobahn.py noecho [--groups '1 2 …']
      Prints the IDs of the cases whose passing outcome needs no message back
      from the client (Autobahn's own expectations, read from its case
      classes; needs the wstest venv): the selection a one-way client such as
      statecast-viewer can be graded on. Cases that expect the client to echo
      a message cannot pass against a viewer, which never sends one.

  autobahn.py summarize INDEX_JSON [--known 'ID=REASON']...
      Counts Autobahn's verdicts (OK / NON-STRICT / INFORMATIONAL /
      UNIMPLEMENTED / FAILED) per case group and overall, lists every case
      that is not plainly OK, and exits 1 when a case FAILED that is not one
      of the known-and-explained ones given with --known (2 when the index is
      missing or empty). It also reads each case's wire log and exits 1 when
      the peer under test sent a data frame after its Close frame (RFC 6455
      5.5.1), which Autobahn itself does not check.
"""
from __future__ import print_function

import argparse
import json
import os
import re
import sys

VERDICTS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]


def case_key(case_id):
    return tuple(int(part) for part in case_id.split("."))


def write_spec(args):
    with open(args.template) as handle:
        spec = json.load(handle)
    spec["outdir"] = args.outdir
    for server in spec["servers"]:
        server["url"] = args.url
    if args.cases:
        spec["cases"] = args.cases.split()
    if args.exclude is not None:
        spec["exclude-cases"] = args.exclude.split()
    with open(args.out, "w") as handle:
        json.dump(spec, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return 0


def write_server_spec(args):
    spec = {
        "url": args.url,
        "outdir": args.outdir,
        "cases": args.cases.split(),
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    with open(args.out, "w") as handle:
        json.dump(spec, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return 0


class _Anything(object):
    """Stands in for the protocol while a case's onOpen() sets its expectations:
    every attribute and call gives another _Anything; close codes are numbers."""

    def __call__(self, *args, **kwargs):
        return _Anything()

    def __getattr__(self, name):
        if name.startswith("CLOSE_STATUS_CODE"):
            return 1000
        return _Anything()


def no_echo_cases(args):
    # This file is called autobahn.py: keep its folder from shadowing the autobahn package.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    from autobahntestsuite import case as cases  # only in the wstest venv (Python 2.7)
    from autobahntestsuite.caseset import CaseSet
    case_set = CaseSet(cases.CaseSetname, cases.CaseBasename, cases.Cases, cases.CaseCategories,
                       cases.CaseSubCategories)
    groups = set(args.groups.split())
    selected = []
    for case_class in cases.Cases:
        case_id = case_set.caseClasstoId(case_class)
        if case_id.split(".")[0] not in groups:
            continue
        instance = case_class(_Anything())
        instance.onOpen()
        passing = instance.expected.get(cases.Case.OK, [])
        if not any(event[0] == "message" for event in passing):
            selected.append(case_id)
    print(" ".join(sorted(selected, key=case_key)))
    return 0


def plain(text):
    """The case description without Autobahn's HTML markup, on one line."""
    text = re.sub(r"<[^>]+>", "", text or "")
    return re.sub(r"\s+", " ", text).strip()


def data_after_close(report_path):
    """Opcodes of data frames the host sent after its Close frame, from the
    case's wire log ("RF" entries: [tag, [length, payload], opcode, ...])."""
    try:
        with open(report_path) as handle:
            wirelog = json.load(handle).get("wirelog", [])
    except (IOError, OSError, ValueError):
        return []
    closed = False
    late = []
    for entry in wirelog:
        if entry[0] != "RF":
            continue
        opcode = entry[2]
        if opcode == 8:
            closed = True
        elif closed and opcode in (0, 1, 2):
            late.append(opcode)
    return late


def summarize(args):
    known = {}
    for item in args.known or []:
        case_id, _, reason = item.partition("=")
        known[case_id.strip()] = reason.strip()

    try:
        with open(args.index) as handle:
            index = json.load(handle)
    except (IOError, OSError, ValueError) as error:
        print("conformance: cannot read %s: %s" % (args.index, error))
        return 2
    if not index:
        print("conformance: %s lists no agent (did wstest reach the host?)" % args.index)
        return 2

    status = 0
    for agent in sorted(index):
        cases = index[agent]
        if not cases:
            print("conformance: no case ran for %s" % agent)
            return 2
        groups = {}
        totals = dict((verdict, 0) for verdict in VERDICTS + ["OTHER"])
        noteworthy = []
        unexplained = []
        known_failed = []
        late_data = []
        for case_id in sorted(cases, key=case_key):
            entry = cases[case_id]
            behavior = entry.get("behavior", "?")
            close = entry.get("behaviorClose", "?")
            column = behavior if behavior in VERDICTS else "OTHER"
            group = case_id.split(".")[0]
            counts = groups.setdefault(group, dict((verdict, 0) for verdict in VERDICTS + ["OTHER"]))
            counts[column] += 1
            totals[column] += 1
            if behavior != "OK" or close not in ("OK", "INFORMATIONAL"):
                noteworthy.append((case_id, behavior, close, entry))
            report = os.path.join(os.path.dirname(args.index), entry.get("reportfile", ""))
            if entry.get("reportfile") and data_after_close(report):
                late_data.append(case_id)
            if column in ("FAILED", "OTHER"):
                if case_id in known:
                    known_failed.append(case_id)
                else:
                    unexplained.append(case_id)

        print("Autobahn|Testsuite against %s: %d cases" % (agent, len(cases)))
        header = "%-7s %6s %6s %11s %14s %14s %7s" % (
            "group", "cases", "OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
        print(header)
        print("-" * len(header))

        def row(label, counts):
            failed = counts["FAILED"] + counts["OTHER"]
            return "%-7s %6d %6d %11d %14d %14d %7d" % (
                label, sum(counts.values()), counts["OK"], counts["NON-STRICT"],
                counts["INFORMATIONAL"], counts["UNIMPLEMENTED"], failed)

        for group in sorted(groups, key=int):
            print(row(group + ".*", groups[group]))
        print("-" * len(header))
        print(row("all", totals))

        if noteworthy:
            print("")
            print("Cases not plainly OK (verdict / closing behaviour):")
            for case_id, behavior, close, entry in noteworthy:
                path = entry.get("reportfile", "")
                mark = ""
                if case_id in known:
                    mark = "  [known: %s]" % known[case_id]
                print("  %-8s %-13s close %-17s %s%s" % (case_id, behavior, close, path, mark))

        stale = sorted((set(known) - set(known_failed)) & set(cases), key=case_key)
        if stale:
            print("")
            print("Listed as known failures but did not fail this time: %s" % ", ".join(stale))

        print("")
        if late_data:
            print("conformance: the peer under test sent data frames after its Close frame (RFC 6455 5.5.1) in: %s"
                  % ", ".join(late_data))
            status = 1
        if unexplained:
            print("conformance: %d case(s) FAILED without a known explanation: %s"
                  % (len(unexplained), ", ".join(unexplained)))
            status = 1
        else:
            print("conformance: no unexplained FAILED case (%d known: %s)"
                  % (len(known_failed), ", ".join(known_failed) or "none"))
    return status


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")

    spec = commands.add_parser("spec")
    spec.add_argument("template")
    spec.add_argument("out")
    spec.add_argument("--url", required=True)
    spec.add_argument("--outdir", required=True)
    spec.add_argument("--cases")
    spec.add_argument("--exclude")

    server_spec = commands.add_parser("server-spec")
    server_spec.add_argument("out")
    server_spec.add_argument("--url", required=True)
    server_spec.add_argument("--outdir", required=True)
    server_spec.add_argument("--cases", required=True)

    noecho = commands.add_parser("noecho")
    noecho.add_argument("--groups", default="1 2 3 4 5 6 7 10")

    summary = commands.add_parser("summarize")
    summary.add_argument("index")
    summary.add_argument("--known", action="append")

    args = parser.parse_args()
    if args.command == "spec":
        return write_spec(args)
    if args.command == "server-spec":
        return write_server_spec(args)
    if args.command == "noecho":
        return no_echo_cases(args)
    if args.command == "summarize":
        return summarize(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
