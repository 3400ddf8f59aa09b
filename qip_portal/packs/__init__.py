"""Inspection evidence packs and the share links that open them without a login.

- ``models``: the pack, its share links and their access log;
- ``evidence_pack``: compiling and rendering a pack (HTML, PDF, ZIP);
- ``sharing``: creating, revoking and opening share links;
- ``views``, ``share_views``: their pages; ``tasks``: the render task.
"""
