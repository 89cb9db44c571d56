"""The demo's "Try it" banner: shell commands a user pastes into another terminal.

Each command sits on its own line (no continuations) and says in a trailing comment what it
should answer (`# yes`, `# no`, `# denied: ...`, `# refused: <the guard's reason>`);
tests/demo runs the banner's lines exactly as printed and checks those answers, so the banner
cannot drift from what works. The variables are the ones the `scangate` client reads
(`SCANGATE_URL`, `SCANGATE_TOKEN`).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from app.demo.seed import DEMO_DEBUG_IMAGE, DEMO_NAMESPACE


def _activate_command() -> str | None:
    """How to put this installation's `scangate` on the PATH, when it lives in a virtualenv."""
    if sys.prefix == sys.base_prefix:
        return None
    activate = Path(sys.prefix) / "bin" / "activate"
    try:
        shown = str(activate.relative_to(Path.cwd()))
    except ValueError:
        shown = str(activate)
    return f". {shlex.quote(shown)}"


def demo_banner(
    *, base_url: str, cluster_url: str, guard_url: str, config_path: Path, api_key_file: Path
) -> str:
    """What to try next; printed once the server answers."""
    ns = DEMO_NAMESPACE
    activate = _activate_command()
    path_line = f"  {activate:<52} # puts the scangate command on the PATH\n" if activate else ""
    key = shlex.quote(str(api_key_file))
    request = (
        f"scangate grant request -n {ns} --pod web-0 --scanner exec"
        " --kubeconfig-out grant.kubeconfig"
    )
    debug_request = (
        f"scangate grant request -n {ns} --pod web-1 --scanner debug"
        " --kubeconfig-out debug.kubeconfig"
    )
    allowed_debug = f"$D debug web-1 -c dbg --profile=restricted --image={DEMO_DEBUG_IMAGE}"
    refused_debug = "$D debug web-1 -c dbg2 --profile=restricted --image=alpine:3.20"
    return f"""
scangate demo
  API:               {base_url}   (docs: {base_url}/docs)
  simulated cluster: {cluster_url}   (namespace '{ns}': pods web-0, web-1, db-0)
  grant guard:       {guard_url}   (admission webhook, registered in that cluster)
  config:            {config_path}
  API key:           stored in {api_key_file}

Try it (in another terminal, from this directory):
{path_line}  export SCANGATE_URL={base_url}
  export SCANGATE_TOKEN="$(cat {key})"
  scangate whoami
  # 1. request access to one pod for the 'exec' scanner (default TTL: 15 minutes)
  GRANT=$({request})
  # 2. grant.kubeconfig holds a short-lived token that can touch only that pod
  K="kubectl --kubeconfig grant.kubeconfig -n {ns}"
  $K auth can-i create pods/web-0 --subresource=exec   # yes
  $K auth can-i create pods/db-0 --subresource=exec    # no: another pod
  $K auth can-i list pods                              # no
  $K auth can-i get secrets                            # no
  $K get pod web-0                                     # works
  $K exec web-0 -- cat /etc/os-release                 # runs in the pod (simulated)
  # 3. revoke: the RoleBinding goes first, so the token is refused at once
  scangate grant revoke $GRANT
  $K get pod web-0                                     # denied: Forbidden or Unauthorized
  # 4. a 'debug' grant: the grant guard (an admission webhook) judges each debug container;
  #    the demo policy allows exactly the image {DEMO_DEBUG_IMAGE}, never privileged or root
  DBG=$({debug_request})
  D="kubectl --kubeconfig debug.kubeconfig -n {ns}"
  {allowed_debug}   # works
  {refused_debug}   # refused: image 'alpine:3.20' is not allowed
  # every decision, allowed or refused, is on the grant's audit trail (image, verdict, reason)
  scangate grant events $DBG
  # the same API over HTTP, e.g. your grants:
  curl -s $SCANGATE_URL/v1/grants -H "Authorization: Bearer $SCANGATE_TOKEN"

Stop with Ctrl-C (the simulated cluster stops with it).
"""
