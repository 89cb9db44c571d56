"""The admin-only audit export: `GET /v1/events`, every grant event in order, paginated.

It reads through the grants repository (the owner of the `grant_events` table); this package
only shapes the feed for exporters (SIEMs, archives).
"""
