"""Run one `helm install` through helm-sdkpy and print the release as JSON.

Helm's Go runtime reads its environment once, from the process's initial environment, so
`HELM_DRIVER=memory` only takes effect in a process started with it: the Helm test runs this
module in a subprocess.

    python -m tests.kubesim.helm_install KUBECONFIG CHART NAMESPACE RELEASE [VALUES_JSON
        [OPTIONS_JSON]]

OPTIONS_JSON holds keyword arguments of `Install.run` (`create_namespace`, ...).

    python -m tests.kubesim.helm_install --uninstall KUBECONFIG NAMESPACE RELEASE

uninstalls a release instead and prints Helm's answer.
"""

from __future__ import annotations

import asyncio
import json
import sys

import helm_sdkpy


def main(argv: list[str]) -> int:
    if argv[:1] == ["--uninstall"]:
        kubeconfig, namespace, release = argv[1:4]
        config = helm_sdkpy.Configuration(namespace=namespace, kubeconfig=kubeconfig)
        answer = asyncio.run(helm_sdkpy.Uninstall(config).run(release, wait=False))
        print(json.dumps(answer, default=str))
        return 0
    kubeconfig, chart, namespace, release = argv[:4]
    values = json.loads(argv[4]) if len(argv) > 4 else {}
    options = json.loads(argv[5]) if len(argv) > 5 else {}
    config = helm_sdkpy.Configuration(namespace=namespace, kubeconfig=kubeconfig)
    install = helm_sdkpy.Install(config).run(release, chart, values=values, wait=False, **options)
    result = asyncio.run(install)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
