"""The orphan sweep: delete this installation's labelled objects whose grant is not live.

Only objects carrying this installation's label (`installation_id`) are judged: another
installation's objects in a shared target namespace belong to grants this database has never
heard of, and deleting them would end that installation's live grants. Objects labelled
managed-by scangate without an installation label predate the label and are reported, never
deleted. Each delete carries the listed object's uid and resourceVersion as preconditions, so an
object replaced or relabelled since the listing is left for the next sweep to judge.

Live means `provisioning`, `active` or `revoking`; objects of any other grant (ended, failed, or
unknown to this database) are leftovers of a crash or of a cleanup that failed, and must go:
after a sweep the cluster holds scangate objects exactly for live grants.

Order matters for correctness: the cluster is listed *before* the database is asked which grants
are live. A grant's row is committed before its first object is created, so any object seen in
the listing already has its row; asking the database first would let a grant created between the
two steps look unknown and lose its fresh objects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from app.db.engine import Database
from app.grants import reaper_queries
from app.grants.deletion import DELETE_ORDER
from app.kube.clusters import ClusterClient
from app.kube.models import ManagedObject
from app.settings_sections import PolicyConfig

log = logging.getLogger(__name__)


async def sweep_cluster(
    db: Database, cluster: ClusterClient, known_namespaces: Iterable[str] = ()
) -> int:
    """Delete `cluster`'s orphans; returns how many this call deleted. `known_namespaces` (plus
    every namespace a grant ever targeted) is where to look when scangate may not list Roles
    cluster-wide."""
    async with db.session() as session:
        namespaces = set(await reaper_queries.grant_namespaces(session, cluster.name))
    listed = await cluster.list_managed_objects(sorted(namespaces | set(known_namespaces)))
    objects = [obj for obj in listed if obj.installation == cluster.installation_id]
    unclaimed = [obj for obj in listed if obj.installation is None]
    if unclaimed:
        log.warning(
            "cluster %s: %d object(s) labelled managed-by=scangate without an installation "
            "label (created before installations were labelled, or by hand), left alone: %s",
            cluster.name,
            len(unclaimed),
            ", ".join(_describe(o) for o in unclaimed[:10]),
        )
    unlabelled = [obj for obj in objects if obj.grant_id is None]
    if unlabelled:
        # Marked managed-by scangate but without a grant label: not ours to judge, possibly a
        # person's. Reported, never deleted.
        log.warning(
            "cluster %s: %d object(s) labelled managed-by=scangate without a grant label, "
            "left alone: %s",
            cluster.name,
            len(unlabelled),
            ", ".join(_describe(o) for o in unlabelled[:10]),
        )
    labelled = [obj for obj in objects if obj.grant_id is not None]
    if not labelled:
        return 0
    async with db.session() as session:
        live = await reaper_queries.live_grant_ids(
            session, {o.grant_id for o in labelled if o.grant_id}
        )
    orphans = sorted(
        (obj for obj in labelled if obj.grant_id not in live),
        key=lambda obj: (obj.grant_id or "", DELETE_ORDER[obj.kind]),
    )
    swept = 0
    for obj in orphans:
        # Another replica's sweep may have listed the same orphans: count only the objects
        # this pass deleted, so replicas' reports and metrics add up to what was removed.
        outcome = await cluster.delete_managed_object(obj)
        if outcome == "deleted":
            swept += 1
            log.info("swept orphan %s of grant %s", _describe(obj), obj.grant_id)
        elif outcome == "changed":
            log.info(
                "orphan %s changed since it was listed; judged again next sweep", _describe(obj)
            )
    return swept


def _describe(obj: ManagedObject) -> str:
    return f"{obj.kind} {obj.namespace}/{obj.name}"


def policy_namespaces(policies: Iterable[PolicyConfig], cluster: str) -> set[str]:
    """Namespaces policies name exactly for `cluster`: where to look for orphans if scangate
    may not list Roles cluster-wide, even before any grant has targeted them."""
    return {
        namespace
        for policy in policies
        if "*" in policy.clusters or cluster in policy.clusters
        for namespace in policy.namespaces
        if "*" not in namespace
    }
