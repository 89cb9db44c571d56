#!/usr/bin/env python3
"""Run the demo profile against pods through `kubectl exec`, as InSpec does with
train-k8s-container, and report like InSpec's CLI reporter.

    python examples/demo-scan/scan.py --kubeconfig grant.kubeconfig -n shop -c app web-0 web-1

Every control's command runs as `kubectl exec --stdin POD -n NS -c CONTAINER -- /bin/sh -c CMD`
with the given kubeconfig (a scangate grant's). Exit status, as InSpec's: 0 when every control
passed, 100 when a control failed, 1 when a command could not run at all (the credentials were
refused, the pod is not granted...), which stops the scan.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROFILE = Path(__file__).with_name("profile.yaml")
EXIT_FAILED_CONTROLS = 100
# How kubectl reports that the remote command ran and exited non-zero; anything else on stderr
# with a non-zero status is kubectl failing to run it (Unauthorized, Forbidden, NotFound...).
_TERMINATED = re.compile(r"^command terminated with exit code (\d+)$", re.MULTILINE)


class ExecFailed(Exception):
    """kubectl could not run the command; the message is kubectl's."""


@dataclass
class Outcome:
    control: dict[str, Any]
    passed: bool
    message: str = ""


def kubectl_exec(
    kubeconfig: str, namespace: str, pod: str, container: str, command: str
) -> subprocess.CompletedProcess[str]:
    argv = ["kubectl", "--kubeconfig", kubeconfig, "exec", "--stdin", pod, "-n", namespace]
    argv += ["-c", container, "--", "/bin/sh", "-c", command]
    completed = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False
    )
    if completed.returncode != 0 and not _TERMINATED.search(completed.stderr):
        raise ExecFailed(completed.stderr.strip() or f"kubectl exited {completed.returncode}")
    return completed


def judge(control: dict[str, Any], completed: subprocess.CompletedProcess[str]) -> Outcome:
    expect = control.get("expect") or {}
    wanted_status = int(expect.get("exit_status", 0))
    if completed.returncode != wanted_status:
        return Outcome(
            control, False, f"expected exit status {wanted_status}, got {completed.returncode}"
        )
    pattern = expect.get("stdout_matches")
    if pattern and not re.search(pattern, completed.stdout, re.MULTILINE):
        return Outcome(control, False, f"expected stdout to match /{pattern}/")
    return Outcome(control, True)


def scan(
    profile: dict[str, Any], kubeconfig: str, namespace: str, pod: str, container: str
) -> list[Outcome]:
    outcomes = []
    for control in profile["controls"]:
        completed = kubectl_exec(kubeconfig, namespace, pod, container, control["command"])
        outcomes.append(judge(control, completed))
    return outcomes


def _report_cli(profile: dict[str, Any], target: str, outcomes: list[Outcome]) -> None:
    print(f"Profile:   {profile['title']} ({profile['name']})")
    print(f"Target:    {target}\n")
    for outcome in outcomes:
        mark = "\u2714" if outcome.passed else "\u00d7"
        print(f"  {mark}  {outcome.control['id']}: {outcome.control['title']}")
        if outcome.message:
            print(f"     {outcome.message}")
    passed = sum(o.passed for o in outcomes)
    failed = len(outcomes) - passed
    plural = "" if failed == 1 else "s"
    print(
        f"\nProfile Summary: {passed} successful controls, {failed} control failure{plural}, "
        "0 controls skipped\n"
    )


def _as_json(target: str, outcomes: list[Outcome]) -> dict[str, Any]:
    return {
        "target": target,
        "controls": [
            {
                "id": o.control["id"],
                "title": o.control["title"],
                "impact": o.control.get("impact", 0.5),
                "status": "passed" if o.passed else "failed",
                "message": o.message,
            }
            for o in outcomes
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pods", nargs="+", metavar="POD")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("-n", "--namespace", default="default")
    parser.add_argument("-c", "--container", required=True)
    parser.add_argument("--profile", type=Path, default=PROFILE)
    parser.add_argument("--reporter", choices=["cli", "json"], default="cli")
    args = parser.parse_args(argv)
    profile = yaml.safe_load(args.profile.read_text())
    results = []
    any_failed = False
    for pod in args.pods:
        target = f"k8s-container://{args.namespace}/{pod}/{args.container}"
        try:
            outcomes = scan(profile, args.kubeconfig, args.namespace, pod, args.container)
        except ExecFailed as exc:
            print(f"{target}: cannot run commands: {exc}", file=sys.stderr)
            return 1
        any_failed = any_failed or not all(o.passed for o in outcomes)
        if args.reporter == "cli":
            _report_cli(profile, target, outcomes)
        results.append(_as_json(target, outcomes))
    if args.reporter == "json":
        print(json.dumps({"profile": profile["name"], "targets": results}, indent=2))
    return EXIT_FAILED_CONTROLS if any_failed else 0


if __name__ == "__main__":
    sys.exit(main())
